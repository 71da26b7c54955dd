use crate::util::*;

/// The benign look-alikes of the generator must never rise above `low`.
fn assert_benign_quiet(
    rows: &[std::collections::HashMap<String, String>],
    truth: &serde_json::Value,
) {
    for key in [
        "nightly_key",
        "rotated_key",
        "notice_principal",
        "last_day_principal",
    ] {
        let id = truth[key].as_str().unwrap();
        assert_eq!(
            severity_of(rows, id),
            None,
            "{key} {id} must not be flagged: {rows:#?}"
        );
    }
    let failing = truth["failing_principal"].as_str().unwrap();
    let sev = severity_of(rows, failing);
    assert!(
        matches!(sev.as_deref(), None | Some("low" | "informational")),
        "{failing}: {sev:?}"
    );
    let device = format!("dev-{failing}-laptop");
    let sev = severity_of(rows, &device);
    assert!(
        matches!(sev.as_deref(), None | Some("low" | "informational")),
        "{device}: {sev:?}"
    );
}

/// The abused key's row names both halves of the story: tokens the issuer never issued, and a
/// custodian who had left (the key's use after the departure and the key still being active).
fn assert_insider_reasons(row: &std::collections::HashMap<String, String>, context: &str) {
    for code in [
        "never_issued_tokens",
        "used_after_owner_left",
        "departed_custodian_key_active",
    ] {
        assert!(
            row["reasons"].contains(code),
            "{context}: {code} missing from {}",
            row["reasons"]
        );
    }
}

#[test]
fn sample_logs_put_the_departed_custodians_key_first() {
    let dir = tmp();
    let out_dir = dir.path().join("out");
    let sample = repo().join("sample_logs");
    let rows = analyze_ok(&out_dir, &[sample.to_str().unwrap()]);
    let truth = truth(&sample);
    assert_eq!(
        rows[0]["entity_id"],
        truth["abused_key"].as_str().unwrap(),
        "{rows:#?}"
    );
    assert_eq!(rows[0]["severity"], "critical");
    assert_insider_reasons(&rows[0], "sample_logs");
    assert_benign_quiet(&rows, &truth);
    assert!(
        out_dir.join("charts").read_dir().unwrap().count() >= 1,
        "no chart written"
    );
}

#[test]
fn generated_seeds_rank_the_abused_key_first() {
    for seed in [1, 2, 3] {
        let input = generated(seed);
        let truth = truth(&input);
        let dir = tmp();
        let out = analyze(&dir.path().join("out"), &[input.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "seed {seed}: {}", stderr(&out));
        let rows = anomalies(&dir.path().join("out"));
        assert_eq!(
            rank_of(&rows, truth["abused_key"].as_str().unwrap()),
            Some(1),
            "seed {seed}: {rows:#?}"
        );
        assert_insider_reasons(&rows[0], &format!("seed {seed}"));
        assert_benign_quiet(&rows, &truth);
    }
}

/// A team running the tool on the day after abuse begins already sees the key on top.
#[test]
fn abuse_is_ranked_first_from_its_first_day() {
    let input = generated(2);
    let truth = truth(&input);
    let first_day = truth["abuse_start"].as_str().unwrap();
    let date = chrono::NaiveDate::parse_from_str(first_day, "%Y-%m-%d").unwrap();
    let cut = (date + chrono::Days::new(1)).to_string();
    let dir = tmp();
    let rows = analyze_ok(
        &dir.path().join("out"),
        &[input.to_str().unwrap(), "--to", &cut],
    );
    assert_eq!(
        rows[0]["entity_id"],
        truth["abused_key"].as_str().unwrap(),
        "{rows:#?}"
    );
    assert_insider_reasons(&rows[0], &format!("export cut at {cut}"));
    // And before it begins, the key has nothing to show beyond the unrevoked-key hygiene finding.
    let rows = analyze_ok(
        &dir.path().join("before"),
        &[input.to_str().unwrap(), "--to", first_day],
    );
    let sev = severity_of(&rows, truth["abused_key"].as_str().unwrap());
    assert!(
        matches!(sev.as_deref(), None | Some("low" | "informational")),
        "{sev:?}"
    );
}

#[test]
fn departure_day_is_inclusive_and_rotation_grace_is_respected() {
    let dir = tmp();
    let input = dir.path().join("in");
    write(&input.join("roster.csv"), ROSTER);
    write(&input.join("credentials.csv"), CREDS);
    // E1 left on 2025-01-31: a login that day is fine, one on 2025-02-01 is not.
    // ak-svc revoked 2025-02-10: used within the 48 h grace is fine, 5 days later is not.
    write(
        &input.join("events.csv"),
        "timestamp,event_type,principal,credential_id,target_account,outcome\n\
         2025-01-31T23:59:00Z,login,E1,,,success\n\
         2025-02-11T12:00:00Z,access,svc-batch,ak-svc,C1,success\n\
         2025-02-01T00:00:01Z,login,E2,,,success\n",
    );
    let out_dir = dir.path().join("out");
    let rows = analyze_ok(&out_dir, &[input.to_str().unwrap()]);
    assert_eq!(rank_of(&rows, "E1"), None, "{rows:#?}");
    assert_eq!(rank_of(&rows, "ak-svc"), None, "{rows:#?}");
    assert_eq!(rank_of(&rows, "E2"), None, "{rows:#?}");

    write(
        &input.join("late.csv"),
        "timestamp,event_type,principal,credential_id,target_account,outcome\n\
         2025-02-01T00:00:01Z,login,E1,,,success\n\
         2025-02-15T12:00:00Z,access,svc-batch,ak-svc,C1,success\n",
    );
    let out_dir = dir.path().join("out2");
    let rows = analyze_ok(&out_dir, &[input.to_str().unwrap()]);
    assert!(rank_of(&rows, "E1").is_some(), "{rows:#?}");
    assert!(rank_of(&rows, "ak-svc").is_some(), "{rows:#?}");
}

/// The top row carries the evidence an analyst needs to act, in `anomalies.jsonl`.
#[test]
fn top_row_evidence_names_tokens_subjects_addresses_and_first_event() {
    let input = generated(3);
    let truth = truth(&input);
    let dir = tmp();
    let out = analyze(&dir.path().join("out"), &[input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("out/anomalies.jsonl")).unwrap();
    let top: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(top["entity"]["id"], truth["abused_key"]);
    let reasons = top["reasons"].as_array().unwrap();
    let never = reasons
        .iter()
        .find(|r| r["code"] == "never_issued_tokens")
        .expect("never-issued reason");
    let ev = &never["evidence"];
    // Token ids as the export spelled them (the generator's `tk-` and 16 hex digits), not the
    // codes the frame holds them as.
    let samples = ev["sample_tokens"].as_array().expect("sample tokens");
    assert!(!samples.is_empty(), "{ev}");
    for t in samples {
        let t = t.as_str().unwrap_or_default();
        let hex = t.strip_prefix("tk-").unwrap_or_default();
        assert!(
            hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{t:?} in {ev}"
        );
    }
    assert!(
        ev["sample_subjects"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{ev}"
    );
    let attacker: Vec<&str> = truth["attacker_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let sources = ev["top_sources"].as_array().unwrap();
    assert!(
        sources
            .iter()
            .all(|s| attacker.contains(&s[0].as_str().unwrap())),
        "{sources:?}"
    );
    assert!(
        ev["first_event"]
            .as_str()
            .unwrap()
            .contains("gateway/access-"),
        "{ev}"
    );
    let by_source = ev["by_source"].as_array().expect("per-address breakdown");
    assert!(
        !by_source.is_empty() && by_source.iter().all(|b| b["tokens"].as_u64() > Some(0)),
        "{ev}"
    );
    let per_source_total: u64 = by_source
        .iter()
        .map(|b| b["accesses"].as_u64().unwrap())
        .sum();
    assert_eq!(
        per_source_total,
        never["events"].as_u64().unwrap(),
        "addresses account for every access"
    );
    assert!(
        top["related"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == truth["custodian"]),
        "{top}"
    );
    assert!(
        reasons.iter().any(|r| r["code"] == "used_after_owner_left"),
        "{top}"
    );
}
