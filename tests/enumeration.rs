use std::collections::HashMap;

use crate::util::*;

type Rows = Vec<HashMap<String, String>>;

/// Employees whose role touches many accounts or machines, from the generated roster.
fn busy_employees(input: &std::path::Path, except: &str) -> Vec<String> {
    read_csv(&input.join("roster.csv"))
        .into_iter()
        .filter(|r| {
            matches!(r["department"].as_str(), "support" | "it-admin") && r["employee_id"] != except
        })
        .map(|r| r["employee_id"].clone())
        .collect()
}

fn assert_planted_on_top_and_benign_below(input: &std::path::Path, rows: &Rows) {
    let truth = truth(input);
    let planted = ["abused_key", "attacker_network", "burst_principal"]
        .map(|k| truth[k].as_str().unwrap().to_string());
    let mut worst = 0;
    for id in &planted {
        let rank = rank_of(rows, id).unwrap_or_else(|| panic!("{id} not flagged: {rows:#?}"));
        assert!(rank <= 5, "{id} ranks {rank}, not in the top 5: {rows:#?}");
        worst = worst.max(rank);
    }
    let mut benign: Vec<String> = ["nightly_key", "nightly_principal", "nightly_source"]
        .map(|k| truth[k].as_str().unwrap().to_string())
        .to_vec();
    benign.extend(busy_employees(input, &planted[2]));
    for id in &benign {
        if let Some(rank) = rank_of(rows, id) {
            assert!(
                rank > worst,
                "benign {id} ranks {rank}, above planted abuse (worst planted rank {worst})"
            );
            let sev = severity_of(rows, id).unwrap_or_default();
            assert!(
                matches!(sev.as_str(), "low" | "informational"),
                "benign {id} is {sev}"
            );
        }
    }
}

#[test]
fn planted_enumeration_ranks_top_5_and_look_alikes_below_on_sample_logs() {
    let dir = tmp();
    let sample = repo().join("sample_logs");
    let rows = analyze_ok(&dir.path().join("out"), &[sample.to_str().unwrap()]);
    assert_planted_on_top_and_benign_below(&sample, &rows);
    let net = rows
        .iter()
        .find(|r| r["entity_id"] == "203.0.113.0/24")
        .unwrap();
    for code in ["low_and_slow_reach", "sequential_walk"] {
        assert!(net["reasons"].contains(code), "{code}: {}", net["reasons"]);
    }
}

#[test]
fn planted_enumeration_ranks_top_5_on_generated_seeds() {
    for seed in [1, 2, 3] {
        let input = generated(seed);
        let dir = tmp();
        let out = analyze(&dir.path().join("out"), &[input.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "seed {seed}: {}", stderr(&out));
        assert_planted_on_top_and_benign_below(&input, &anomalies(&dir.path().join("out")));
    }
}

/// A current employee who looks up 6,000 accounts in one night after weeks of ~30 a day.
#[test]
fn one_night_burst_of_6000_lookups_ranks_top_5() {
    let dir = tmp();
    let input = dir.path().join("export");
    let made = bin()
        .args([
            "generate",
            "--days",
            "40",
            "--customers",
            "10000",
            "--employees",
            "30",
            "--seed",
            "5",
            "--out",
        ])
        .arg(&input)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let rows = analyze_ok(&dir.path().join("out"), &[input.to_str().unwrap()]);
    let who = truth(&input)["burst_principal"]
        .as_str()
        .unwrap()
        .to_string();
    let rank = rank_of(&rows, &who).expect("burst principal flagged");
    assert!(rank <= 5, "rank {rank}: {rows:#?}");
    let row = rows.iter().find(|r| r["entity_id"] == who).unwrap();
    assert!(
        row["reasons"].contains("burst_over_own_baseline")
            && row["reasons"].contains("6000 distinct accounts")
            && row["reasons"].contains("in one hour"),
        "{row:?}"
    );
}

/// Allowlisted entities leave the ranking but stay counted and listed; expired entries do nothing.
#[test]
fn allowlist_suppresses_explicitly_and_expires() {
    let dir = tmp();
    let sample = repo().join("sample_logs");
    let allow = dir.path().join("allow.toml");
    write(
        &allow,
        "[[allow]]\nentity = \"E1011\"\nkind = \"principal\"\nreason = \"migration of CRM records\"\nexpires = \"2099-12-31\"\nowner = \"crm-team@example.com\"\n\n\
         [[allow]]\nentity = \"203.0.113.0/24\"\nreason = \"pentest\"\nexpires = \"2025-01-01\"\nowner = \"red-team@example.com\"\n",
    );
    let out_dir = dir.path().join("out");
    let rows = analyze_ok(
        &out_dir,
        &[
            sample.to_str().unwrap(),
            "--allowlist",
            allow.to_str().unwrap(),
        ],
    );
    assert_eq!(rank_of(&rows, "E1011"), None, "suppressed row still ranked");
    assert!(
        rank_of(&rows, "203.0.113.0/24").is_some(),
        "expired entry must not suppress"
    );
    let ranks: Vec<usize> = rows.iter().map(|r| r["rank"].parse().unwrap()).collect();
    assert_eq!(
        ranks,
        (1..=rows.len()).collect::<Vec<_>>(),
        "ranks renumbered"
    );
    let summary = summary_md(&out_dir);
    assert!(
        summary.contains("migration of CRM records") && summary.contains("crm-team@example.com"),
        "{summary}"
    );
    assert!(summary.contains("expired on 2025-01-01"), "{summary}");

    write(
        &allow,
        "[[allow]]\nentity = \"x\"\nreason = \"\"\nexpires = \"2099-01-01\"\nowner = \"\"\n",
    );
    let out = analyze(
        &dir.path().join("bad"),
        &[
            sample.to_str().unwrap(),
            "--allowlist",
            allow.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "an entry without reason and owner is refused"
    );
}

/// Enumeration profiles each kind twice (every entity's peer figures, then a batch at a time to
/// judge) when its profiles would pass `--profiles-held-bytes`: over `sample_logs`, whose
/// findings name peer groups of four kinds, the report is the same byte for byte as with the
/// profiles held whole, over records in memory and on disk.
#[test]
fn profiling_twice_reports_as_holding_the_profiles() {
    let dir = tmp();
    let sample = repo().join("sample_logs");
    let mut reports = Vec::new();
    for (name, options) in [
        ("held", &[][..]),
        ("twice", &["--profiles-held-bytes", "0"][..]),
        (
            "twice-on-disk",
            &[
                "--profiles-held-bytes",
                "0",
                "--records-on-disk-from-events",
                "0",
            ][..],
        ),
    ] {
        let out_dir = dir.path().join(name);
        let mut args = vec![sample.to_str().unwrap()];
        args.extend(options);
        let out = analyze(&out_dir, &args);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        reports.push(files_under(&out_dir));
    }
    let lines = String::from_utf8(reports[0][std::path::Path::new("anomalies.jsonl")].clone())
        .expect("utf-8");
    let groups: std::collections::BTreeSet<&str> = (lines.split("\"peer_group\":\"").skip(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(groups.len() >= 3, "{groups:?}");
    for (other, name) in reports[1..].iter().zip(["twice", "twice on disk"]) {
        assert_eq!(reports[0], *other, "{name}");
    }
}
