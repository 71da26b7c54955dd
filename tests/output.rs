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
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".audithound"))
        .collect();
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
