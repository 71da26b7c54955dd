use crate::util::*;

/// A departed employee whose id is a spreadsheet formula, and a rejected line that is one.
fn hostile_export(dir: &std::path::Path) -> std::path::PathBuf {
    let input = dir.join("in");
    write(
        &input.join("roster.csv"),
        "employee_id,name,department,hire_date,termination_date\n\"=HYPERLINK(\"\"http://x\"\")\",@evil,+dept,2020-01-01,2025-01-01\n",
    );
    write(&input.join("credentials.csv"), CREDS);
    write(
        &input.join("events.csv"),
        "timestamp,event_type,principal,source_ip,target_account,user_agent\n\
         2025-03-01T10:00:00Z,access,\"=HYPERLINK(\"\"http://x\"\")\",-1.2.3.4,+C1,@ua\n\
         =1+1,access,x,y,z,w\n",
    );
    input
}

fn bad_start(cell: &str) -> bool {
    matches!(
        cell.chars().next(),
        Some('=' | '+' | '-' | '@' | '\t' | '\r')
    )
}

#[test]
fn every_csv_cell_is_neutralised() {
    let dir = tmp();
    let input = hostile_export(dir.path());
    let out_dir = dir.path().join("out");
    let out = analyze(&out_dir, &[input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for name in ["anomalies.csv", "rejects.csv"] {
        let rows = read_csv(&out_dir.join(name));
        assert!(!rows.is_empty(), "{name} should have a row");
        for row in &rows {
            for (col, cell) in row {
                assert!(
                    !bad_start(cell),
                    "{name} column {col} starts with a formula trigger: {cell:?}"
                );
            }
        }
    }
    let rows = anomalies(&out_dir);
    assert!(rows[0]["entity_id"].starts_with("'=HYPERLINK"), "{rows:?}");
}

#[test]
fn existing_report_is_kept_unless_forced() {
    let dir = tmp();
    let input = hostile_export(dir.path());
    let out_dir = dir.path().join("out");
    let first = analyze(&out_dir, &[input.to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    write(&out_dir.join("stale.txt"), "from an earlier report");
    let out = analyze(&out_dir, &[input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert!(out_dir.join("stale.txt").exists());
    let out = analyze(&out_dir, &[input.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!out_dir.join("stale.txt").exists());
    assert!(out_dir.join("summary.md").exists());
    assert!(out_dir.join(".audithound-report").is_file());
    let leftovers = leftovers(dir.path());
    assert!(
        leftovers.is_empty(),
        "temporary directories left behind: {leftovers:?}"
    );
}

#[test]
fn same_input_gives_byte_identical_reports_whatever_the_thread_count() {
    let input = generated(11);
    let dir = tmp();
    let mut outputs = Vec::new();
    for threads in ["1", "2"] {
        let out_dir = dir.path().join(format!("out-{threads}"));
        let out = bin()
            .env("RAYON_NUM_THREADS", threads)
            .env("POLARS_MAX_THREADS", threads)
            .arg("analyze")
            .arg(&input)
            .arg("--out")
            .arg(&out_dir)
            .arg("--quiet")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        outputs.push(out_dir);
    }
    for name in [
        "anomalies.csv",
        "anomalies.jsonl",
        "rejects.csv",
        "summary.md",
    ] {
        let a = std::fs::read(outputs[0].join(name)).unwrap();
        let b = std::fs::read(outputs[1].join(name)).unwrap();
        assert!(a == b, "{name} differs between 1 and 2 threads");
    }
    // The charts and the page that shows them, too.
    let charts: Vec<_> = std::fs::read_dir(outputs[0].join("charts"))
        .expect("charts")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(charts.len() >= 3, "{charts:?}");
    for name in charts {
        let a = std::fs::read(outputs[0].join("charts").join(&name)).unwrap();
        let b = std::fs::read(outputs[1].join("charts").join(&name)).unwrap();
        assert!(a == b, "{name:?} differs between 1 and 2 threads");
    }
    let a = std::fs::read(outputs[0].join("summary.html")).unwrap();
    let b = std::fs::read(outputs[1].join("summary.html")).unwrap();
    assert!(a == b, "summary.html differs between 1 and 2 threads");
}

/// `--timings-per-detector` runs the detectors one after another (to see each one's peak): the
/// report must not change, and each detector gets its line.
#[test]
fn detectors_timed_one_by_one_give_the_same_report() {
    let input = generated(11);
    let dir = tmp();
    let mut outputs = Vec::new();
    for (name, extra) in [
        ("together", None),
        ("alone", Some("--timings-per-detector")),
    ] {
        let out_dir = dir.path().join(name);
        let out = bin()
            .arg("analyze")
            .arg(&input)
            .arg("--out")
            .arg(&out_dir)
            .arg("--quiet")
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let lines: Vec<String> = stderr(&out)
            .lines()
            .filter(|l| l.starts_with("timing:   "))
            .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_string())
            .collect();
        if extra.is_some() {
            for detector in [
                "offboarding",
                "forged_tokens",
                "key_lifecycle",
                "enumeration",
                "auth_attacks",
            ] {
                assert!(lines.iter().any(|l| l == detector), "{detector}: {lines:?}");
            }
        } else {
            assert!(lines.is_empty(), "{lines:?}");
        }
        outputs.push(out_dir);
    }
    for name in ["anomalies.csv", "anomalies.jsonl", "summary.md"] {
        let a = std::fs::read(outputs[0].join(name)).unwrap();
        let b = std::fs::read(outputs[1].join(name)).unwrap();
        assert!(a == b, "{name} differs when the detectors run one by one");
    }
}

#[test]
fn fail_on_sets_exit_code_1_only_when_reached() {
    let input = generated(11);
    let dir = tmp();
    let out = analyze(
        &dir.path().join("a"),
        &[input.to_str().unwrap(), "--fail-on", "critical"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let quiet = hostile_export(dir.path());
    let out = analyze(
        &dir.path().join("b"),
        &[quiet.to_str().unwrap(), "--fail-on", "critical"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn reports_do_not_depend_on_input_order() {
    let sample = repo().join("sample_logs");
    let dir = tmp();
    let parts = ["gateway", "auth", "sso"].map(|p| sample.join(p).to_str().unwrap().to_string());
    let ctx = [
        "--roster".to_string(),
        sample.join("roster.csv").to_str().unwrap().to_string(),
        "--credentials".to_string(),
        sample.join("credentials.csv").to_str().unwrap().to_string(),
    ];
    let mut outs = Vec::new();
    for (i, order) in [[0, 1, 2], [2, 0, 1]].iter().enumerate() {
        let out_dir = dir.path().join(format!("out-{i}"));
        let mut args: Vec<&str> = order.iter().map(|k| parts[*k].as_str()).collect();
        args.extend(ctx.iter().map(String::as_str));
        let out = analyze(&out_dir, &args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        outs.push(out_dir);
    }
    for name in [
        "anomalies.csv",
        "anomalies.jsonl",
        "summary.md",
        "summary.html",
    ] {
        let a = std::fs::read(outs[0].join(name)).unwrap();
        let b = std::fs::read(outs[1].join(name)).unwrap();
        assert!(a == b, "{name} depends on the order of the inputs");
    }
}

/// The HTML summary opens offline: every reference is relative and present, nothing is fetched.
#[test]
fn html_summary_is_self_contained() {
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let out = analyze(&out_dir, &[repo().join("sample_logs").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(out_dir.join("summary.html")).unwrap();
    let lower = html.to_ascii_lowercase();
    for banned in ["http:", "https:", "<script", "<link", "@import", "url("] {
        assert!(!lower.contains(banned), "summary.html contains {banned}");
    }
    let mut refs = 0;
    for attr in ["src=\"", "href=\""] {
        for piece in html.split(attr).skip(1) {
            let target = piece.split('"').next().unwrap();
            assert!(
                !target.starts_with('/') && !target.contains("//"),
                "absolute reference {target}"
            );
            assert!(out_dir.join(target).exists(), "missing {target}");
            refs += 1;
        }
    }
    assert!(
        refs >= 3,
        "charts should be embedded by relative links, found {refs}"
    );
    assert!(
        html.contains("kid-legacy-2023") && html.contains("E1001"),
        "the story names the key and custodian"
    );
}

#[test]
fn format_selects_outputs() {
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let out = analyze(
        &out_dir,
        &[
            repo().join("sample_logs").to_str().unwrap(),
            "--format",
            "csv,md",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".audithound-report",
            "anomalies.csv",
            "rejects.csv",
            "summary.md"
        ]
    );
    let out = analyze(
        &dir.path().join("bad"),
        &[
            repo().join("sample_logs").to_str().unwrap(),
            "--format",
            "pdf",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

/// Every HTML-special character from a log field arrives escaped.
#[test]
fn hostile_fields_are_escaped_in_html_and_markdown() {
    let dir = tmp();
    let input = dir.path().join("in");
    write(
        &input.join("roster.csv"),
        "employee_id,name,department,hire_date,termination_date\n<img src=x>,x,y,2020-01-01,2025-01-01\n",
    );
    write(
        &input.join("e.csv"),
        "timestamp,event_type,principal\n2025-03-01T00:00:00Z,login,<img src=x>\n",
    );
    let out_dir = dir.path().join("out");
    let out = analyze(&out_dir, &[input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(out_dir.join("summary.html")).unwrap();
    assert!(
        html.contains("&lt;img src=x&gt;") && !html.contains("<img src=x>"),
        "not escaped"
    );
    let md = summary_md(&out_dir);
    assert!(!md.contains("<img src=x>"), "markdown not escaped");
}

/// `--format ocsf`: one Detection Finding per incident, checked against the OCSF 1.1 facts
/// vendored in `tests/fixtures/ocsf/`: required attributes, their types, enumerations, the
/// `type_uid` rule, observables and ATT&CK ids. The planted key is the first finding's observable.
#[test]
fn ocsf_findings_follow_the_detection_finding_class() {
    use serde_json::Value;
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/ocsf/detection_finding_1.1.0.json"))
            .expect("vendored schema facts"),
    )
    .expect("schema JSON");
    let dir = tmp();
    let out = dir.path().join("r");
    let o = analyze(
        &out,
        &[
            repo().join("sample_logs").to_str().unwrap(),
            "--format",
            "ocsf,csv",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("findings.ocsf.jsonl")).expect("ocsf output");
    let findings: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let incidents: std::collections::BTreeSet<String> = anomalies(&out)
        .iter()
        .map(|r| r["incident"].clone())
        .collect();
    assert_eq!(findings.len(), incidents.len(), "one finding per incident");
    let kind = |v: &Value| match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::String(_) => "string",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        _ => "other",
    };
    let check_types = |obj: &Value, types: &Value, what: &str| {
        for (key, want) in types.as_object().expect("types") {
            if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
                assert_eq!(kind(v), want.as_str().unwrap_or(""), "{what}.{key}: {v}");
            }
        }
    };
    let technique = regex::Regex::new(
        schema["attack"]["technique_uid_pattern"]
            .as_str()
            .unwrap_or(""),
    )
    .expect("pattern");
    for f in &findings {
        for key in schema["required"].as_array().expect("required") {
            let key = key.as_str().unwrap_or("");
            assert!(
                f.get(key).is_some_and(|v| !v.is_null()),
                "missing {key}: {f}"
            );
        }
        check_types(f, &schema["types"], "finding");
        for (key, allowed) in schema["enums"].as_object().expect("enums") {
            assert!(
                allowed.as_array().expect("enum").contains(&f[key]),
                "{key}: {f}"
            );
        }
        assert_eq!(f["class_uid"], schema["class_uid"]);
        assert_eq!(f["category_uid"], schema["category_uid"]);
        assert_eq!(
            f["type_uid"].as_u64(),
            Some(
                f["class_uid"].as_u64().unwrap_or(0) * 100 + f["activity_id"].as_u64().unwrap_or(0)
            )
        );
        let severity = f["severity_id"].to_string();
        assert_eq!(
            f["severity"].as_str().map(str::to_ascii_lowercase),
            schema["severity_names"][&severity]
                .as_str()
                .map(str::to_ascii_lowercase)
        );
        let info = &f["finding_info"];
        for key in schema["finding_info"]["required"]
            .as_array()
            .expect("required")
        {
            assert!(
                info.get(key.as_str().unwrap_or("")).is_some(),
                "finding_info.{key}: {f}"
            );
        }
        check_types(info, &schema["finding_info"]["types"], "finding_info");
        for a in info["attacks"].as_array().expect("attacks") {
            assert!(
                technique.is_match(a["technique"]["uid"].as_str().unwrap_or("")),
                "{a}"
            );
        }
        assert!(f["metadata"]["product"]["vendor_name"].is_string(), "{f}");
        assert!(f["metadata"]["version"].is_string(), "{f}");
        let allowed = schema["observable"]["type_id"]
            .as_array()
            .expect("type ids");
        for o in f["observables"].as_array().expect("observables") {
            assert!(
                o["name"].is_string() && allowed.contains(&o["type_id"]),
                "{o}"
            );
        }
    }
    let first = &findings[0];
    // The signing key the former employee kept, planted in `sample_logs/`.
    let key = "kid-legacy-2023";
    assert!(
        first["observables"]
            .as_array()
            .is_some_and(|o| o.iter().any(|o| o["value"] == key && o["type_id"] == 19)),
        "{first}"
    );
}

/// The HTML carries the charts' severity colours: each incident heading and each severity cell
/// has its severity's class, and the style defines every class from the one palette.
#[test]
fn html_marks_severities_with_the_chart_palette() {
    let dir = tmp();
    let out = dir.path().join("r");
    let o = analyze(&out, &[repo().join("sample_logs").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(out.join("summary.html")).expect("html");
    assert!(
        html.contains("<h3 class=\"sev-critical\">Incident 1 · critical"),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"sev-critical\">critical</td>"),
        "{html}"
    );
    for sev in ["informational", "low", "medium", "high", "critical"] {
        assert!(
            html.contains(&format!("h3.sev-{sev}{{border-left-color:#")),
            "{sev}"
        );
    }
}

/// The columns only evidence reads (file, line, user agent, action) wait on disk from the first
/// event with `--spill-from-events 0`, and the reduced records are made on disk with
/// `--records-on-disk-from-events 0` (then reading the target accounts from disk a group of days
/// at a time, with both); both are in memory by default; enumeration profiles each kind twice
/// (for the peer groups, then a batch at a time to judge) with `--profiles-held-bytes 0`,
/// over records in memory or on disk: the report is the same byte for byte, whole or within a time window, with login attacks among the findings (their guessed
/// names are told by the action), and no scratch file is left beside it.
#[test]
fn a_report_is_the_same_with_the_cold_columns_or_the_records_on_disk() {
    let gateway = generated(11);
    let start = truth(&gateway)["abuse_start"]
        .as_str()
        .expect("abuse start")
        .to_string();
    let dir = tmp();
    let auth = dir.path().join("auth");
    write(&auth.join("auth.log"), &crate::auth_attacks::auth_log());
    let inputs = [
        gateway.to_str().unwrap(),
        auth.to_str().unwrap(),
        "--syslog-year",
        "2025",
    ];
    for window in [
        &[][..],
        &["--from", "2025-03-02", "--to", start.as_str()][..],
    ] {
        let mut reports = Vec::new();
        let spill = ["--spill-from-events", "0"];
        let records = ["--records-on-disk-from-events", "0"];
        let twice = ["--profiles-held-bytes", "0"];
        for (name, options) in [
            ("memory", &[][..]),
            ("cold", &spill[..]),
            ("records", &records[..]),
            ("both", &[spill, records].concat()[..]),
            ("twice", &twice[..]),
            ("all", &[spill, records, twice].concat()[..]),
        ] {
            let out_dir = dir.path().join(format!("out-{}-{name}", window.len()));
            let mut args: Vec<&str> = inputs.to_vec();
            args.extend(window);
            args.extend(options);
            let out = analyze(&out_dir, &args);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            reports.push(files_under(&out_dir));
        }
        let rows = anomalies(&dir.path().join(format!("out-{}-memory", window.len())));
        let reasons = reasons_of(&rows, "203.0.113.66");
        assert!(reasons.contains("username_enumeration"), "{reasons}");
        // Over the whole export enumeration finds the scraper, so profiling twice is compared.
        assert!(
            !window.is_empty() || rows.iter().any(|r| r["detectors"].contains("enumeration")),
            "{rows:#?}"
        );
        assert!(reports[0].len() > 5, "{:?}", reports[0].keys());
        let variants = ["cold columns", "records", "both", "twice", "all"];
        for (other, what) in (reports[1..].iter()).zip(variants) {
            assert_eq!(
                reports[0].keys().collect::<Vec<_>>(),
                other.keys().collect::<Vec<_>>()
            );
            for (name, bytes) in &reports[0] {
                assert!(
                    other[name] == *bytes,
                    "{} differs with the {what} on disk",
                    name.display()
                );
            }
        }
    }
    let leftovers = leftovers(dir.path());
    assert!(leftovers.is_empty(), "scratch left behind: {leftovers:?}");
}
