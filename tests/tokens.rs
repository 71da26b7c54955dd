use crate::util::*;

/// Issuance log 2025-01-01 → 2025-01-10 with no issuance on 2025-01-05; key kid-old rotated on
/// 2025-01-03; kid-new issues after. Only the last access (kid-new, 01-08, never issued) is forged.
fn export(dir: &std::path::Path) -> std::path::PathBuf {
    let input = dir.join("in");
    write(&input.join("roster.csv"), ROSTER);
    write(
        &input.join("credentials.csv"),
        "credential_id,owner,kind,created,revoked\nkid-old,E2,signing_key,2024-01-01,2025-01-03\nkid-new,E2,signing_key,2025-01-02,\n",
    );
    let mut issued = String::new();
    for day in 1..=10 {
        if day == 5 {
            continue;
        }
        let kid = if day <= 3 { "kid-old" } else { "kid-new" };
        issued.push_str(&format!(
            "{{\"timestamp\":\"2025-01-{day:02}T08:00:00Z\",\"event_type\":\"token_issued\",\"token_id\":\"t{day}\",\"credential_id\":\"{kid}\",\"principal\":\"C1\",\"source_ip\":\"100.64.0.1\"}}\n"
        ));
    }
    issued.push_str("{\"timestamp\":\"2025-01-03T23:50:00Z\",\"event_type\":\"token_issued\",\"token_id\":\"late\",\"credential_id\":\"kid-old\",\"principal\":\"C2\",\"source_ip\":\"100.64.0.2\"}\n");
    write(&input.join("issuance.jsonl"), &issued);
    write(
        &input.join("access.csv"),
        "timestamp,event_type,token_id,credential_id,principal,target_account,source_ip\n\
         2025-01-01T00:10:00Z,access,before-export,kid-old,C3,C3,100.64.0.3\n\
         2025-01-04T00:30:00Z,access,late,kid-old,C2,C2,100.64.0.2\n\
         2025-01-05T12:00:00Z,access,during-gap,kid-new,C4,C4,100.64.0.4\n\
         2025-01-06T09:00:00Z,access,t6,kid-new,C1,C1,100.64.0.1\n\
         2025-01-08T09:00:00Z,access,minted,kid-new,C5,C5,203.0.113.9\n",
    );
    input
}

#[test]
fn grace_pre_export_tokens_and_issuer_gaps_are_not_accused() {
    let dir = tmp();
    let input = export(dir.path());
    let out_dir = dir.path().join("out");
    let rows = analyze_ok(&out_dir, &[input.to_str().unwrap()]);
    // The positive control: the one minted token is found.
    let new = rows
        .iter()
        .find(|r| r["entity_id"] == "kid-new")
        .expect("kid-new flagged");
    assert!(
        new["reasons"].contains("never_issued_tokens") && new["reasons"].contains("1 access"),
        "{new:?}"
    );
    assert!(!new["reasons"].contains("during-gap"), "{new:?}");
    // Nothing about the rotated key, the pre-export token or the gap is high.
    for r in &rows {
        if r["entity_id"] != "kid-new" {
            assert!(
                matches!(r["severity"].as_str(), "low" | "informational"),
                "{r:?}"
            );
        }
    }
    let summary = summary_md(&out_dir);
    assert!(summary.contains("does not cover this period"), "{summary}");
    assert!(
        summary.contains("2025-01-05"),
        "the gap day is named: {summary}"
    );
}

#[test]
fn missing_issuance_log_is_stated_not_silent() {
    let dir = tmp();
    let input = export(dir.path());
    std::fs::remove_file(input.join("issuance.jsonl")).unwrap();
    let out_dir = dir.path().join("out");
    let out = analyze(&out_dir, &[input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary = summary_md(&out_dir);
    assert!(summary.contains("no token_issued events"), "{summary}");
}

/// Keys outside their life: a key id the inventory does not know, a key used before its creation,
/// a token presented under another key than it was issued with, and one used days after it was
/// issued.
#[test]
fn unknown_keys_early_keys_and_swapped_keys_are_flagged() {
    let dir = tmp();
    let input = export(dir.path());
    write(
        &input.join("more.csv"),
        "timestamp,event_type,token_id,credential_id,principal,target_account,source_ip\n\
         2025-01-01T12:00:00Z,access,early,kid-new,C6,C6,100.64.0.6\n\
         2025-01-07T10:00:00Z,access,t7,kid-ghost,C1,C1,100.64.0.1\n\
         2025-01-06T10:00:00Z,access,t4,kid-new,C1,C1,100.64.0.1\n",
    );
    let out_dir = dir.path().join("out");
    let rows = analyze_ok(&out_dir, &[input.to_str().unwrap()]);
    let reasons = |id: &str| reasons_of(&rows, id);
    assert!(
        reasons("kid-ghost").contains("key_not_in_inventory"),
        "{rows:#?}"
    );
    assert!(
        reasons("kid-ghost").contains("token_under_other_key"),
        "{rows:#?}"
    );
    assert!(
        reasons("kid-new").contains("key_used_before_created"),
        "{rows:#?}"
    );
    assert!(
        reasons("kid-new").contains("token_past_lifetime"),
        "{rows:#?}"
    );
}

/// The keys held in one byte an event (by default; three keys here), two
/// (`--one-byte-codes-up-to` 0 or under three) or four (`--two-byte-keys-up-to 0`, or a bound
/// under the run's three keys), and the event types in one byte or two, in frames read whole or
/// unpacked run by run (`--spill-from-events 0`): the same report byte for byte. Its findings compare the key column with the inventory (a key it does not know) and
/// with the issuer's key of each token (a token presented under another key), the two places a
/// query reads the column's own codes. One file, whose first event names a client and an action
/// but no key: the keys' codes in the shared dictionary then differ from their own (which start
/// at 0), so a query that mixed the two would differ here (checked by breaking
/// `keys::physical_codes`: a spurious `token_under_other_key` on kid-new). A run that spills
/// makes its frame's columns in a mapped file (`memory::frame_file`), so those variants also
/// compare a frame read through a file's pages with one in memory.
#[test]
fn keys_and_event_types_in_any_width_give_the_same_report() {
    let dir = tmp();
    let input = dir.path().join("in");
    write(&input.join("roster.csv"), ROSTER);
    write(
        &input.join("credentials.csv"),
        "credential_id,owner,kind,created,revoked\n\
         kid-archive,E2,signing_key,2023-01-01,2024-06-01\n\
         kid-old,E2,signing_key,2024-01-01,2025-01-03\n\
         kid-new,E2,signing_key,2025-01-02,\n",
    );
    let event = |at: &str, kind: &str, token: &str, key: &str, who: &str, ip: &str| {
        let target = match kind {
            "access" => format!(",\"target_account\":\"{who}\",\"action\":\"GET /v1/profile\""),
            _ => String::new(),
        };
        format!(
            "{{\"timestamp\":\"2025-01-{at}Z\",\"event_type\":\"{kind}\",\"token_id\":\"{token}\",\"credential_id\":\"{key}\",\"principal\":\"{who}\",\"source_ip\":\"{ip}\"{target}}}\n"
        )
    };
    let mut lines = String::from(
        "{\"timestamp\":\"2025-01-01T07:00:00Z\",\"event_type\":\"login\",\"principal\":\"C1\",\"action\":\"sign-in\",\"user_agent\":\"Mozilla/5.0\",\"source_ip\":\"100.64.0.1\"}\n",
    );
    for day in (1..=10).filter(|&d| d != 5) {
        let key = if day <= 3 { "kid-old" } else { "kid-new" };
        let (at, token) = (format!("{day:02}T08:00:00"), format!("t{day}"));
        lines += &event(&at, "token_issued", &token, key, "C1", "100.64.0.1");
    }
    for (at, kind, token, key, who, ip) in [
        (
            "03T23:50:00",
            "token_issued",
            "late",
            "kid-old",
            "C2",
            "100.64.0.2",
        ),
        (
            "01T00:10:00",
            "access",
            "before-export",
            "kid-old",
            "C3",
            "100.64.0.3",
        ),
        (
            "04T00:30:00",
            "access",
            "late",
            "kid-old",
            "C2",
            "100.64.0.2",
        ),
        (
            "05T12:00:00",
            "access",
            "during-gap",
            "kid-new",
            "C4",
            "100.64.0.4",
        ),
        ("06T09:00:00", "access", "t6", "kid-new", "C1", "100.64.0.1"),
        (
            "08T09:00:00",
            "access",
            "minted",
            "kid-new",
            "C5",
            "203.0.113.9",
        ),
        (
            "01T12:00:00",
            "access",
            "early",
            "kid-new",
            "C6",
            "100.64.0.6",
        ),
        (
            "07T10:00:00",
            "access",
            "t7",
            "kid-ghost",
            "C1",
            "100.64.0.1",
        ),
        ("06T10:00:00", "access", "t4", "kid-new", "C1", "100.64.0.1"),
    ] {
        lines += &event(at, kind, token, key, who, ip);
    }
    write(&input.join("events.jsonl"), &lines);
    let mut reports = Vec::new();
    let (one, two, four) = ("--one-byte-codes-up-to", "--two-byte-keys-up-to", "4");
    // Three keys and three event types (login, token_issued, access).
    for (name, options, keys, types) in [
        ("default", vec![], "1", 1),
        ("unpacked", vec!["--spill-from-events", "0"], "1", 1),
        ("two", vec![one, "0"], "2", 2),
        (
            "one-under",
            vec![one, "2", "--spill-from-events", "0"],
            "2",
            2,
        ),
        ("one-at", vec![one, "3"], "1", 1),
        ("never", vec![two, "0"], four, 1),
        ("under", vec![two, "2", "--spill-from-events", "0"], four, 1),
        ("at", vec![two, "3", one, "0"], "2", 2),
    ] {
        let out_dir = dir.path().join(format!("out-{name}"));
        let mut args = vec![input.to_str().unwrap(), "--timings"];
        args.extend(&options);
        let out = analyze(&out_dir, &args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let held = format!("keys in {keys} byte(s), event types in {types})");
        assert!(stderr(&out).contains(&held), "{name}: {}", stderr(&out));
        // A run that spills is a big run's: its frame's columns are made in a mapped file.
        let files = match options.contains(&"--spill-from-events") {
            true => "(256 MB of files mapped;",
            false => "(0 MB of files mapped;",
        };
        assert!(stderr(&out).contains(files), "{name}: {}", stderr(&out));
        reports.push((name, files_under(&out_dir)));
    }
    let rows = anomalies(&dir.path().join("out-default"));
    let (ghost, new) = (reasons_of(&rows, "kid-ghost"), reasons_of(&rows, "kid-new"));
    assert!(ghost.contains("key_not_in_inventory"), "{rows:#?}");
    assert!(ghost.contains("token_under_other_key"), "{rows:#?}");
    assert!(new.contains("never_issued_tokens"), "{rows:#?}");
    assert!(!new.contains("key_not_in_inventory"), "{rows:#?}");
    let (_, first) = &reports[0];
    for (name, other) in &reports[1..] {
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            other.keys().collect::<Vec<_>>()
        );
        for (file, bytes) in first {
            assert!(other[file] == *bytes, "{} differs: {name}", file.display());
        }
    }
}

/// One issued token presented from five addresses, and sixty subjects reached under another key
/// through two addresses that never received a token: each pattern is named on its key.
#[test]
fn shared_tokens_and_subjects_from_unissuing_addresses_are_flagged() {
    let dir = tmp();
    let input = export(dir.path());
    let mut more = String::from(
        "timestamp,event_type,token_id,credential_id,principal,target_account,source_ip\n",
    );
    for i in 0..5 {
        more.push_str(&format!(
            "2025-01-06T09:{i:02}:00Z,access,t6,kid-new,C1,C1,100.64.1.{i}\n"
        ));
    }
    for i in 0..60 {
        more.push_str(&format!(
            "2025-01-02T10:{:02}:00Z,access,x{i},kid-old,C{},C{},203.0.113.{}\n",
            i % 60,
            100 + i,
            100 + i,
            i % 2
        ));
    }
    write(&input.join("more.csv"), &more);
    let out_dir = dir.path().join("out");
    let rows = analyze_ok(&out_dir, &[input.to_str().unwrap()]);
    assert!(
        reasons_of(&rows, "kid-new").contains("token_shared_across_addresses"),
        "{rows:#?}"
    );
    assert!(
        reasons_of(&rows, "kid-old").contains("subjects_from_unissuing_addresses"),
        "{rows:#?}"
    );
}

/// A forger rotating over four addresses of one /24, each presenting never-issued tokens for 25
/// subjects, with a stray never-issued token from another address of that /24; a forger on one
/// address of another network (30 subjects); an address with three never-issued tokens. The /24
/// is one finding counting all its never-issued accesses (stray included), its addresses are
/// not repeated, the lone forger is its own finding, and three tokens make no address a forger.
#[test]
fn a_forger_rotating_in_one_network_is_one_finding_and_a_lone_one_is_its_address() {
    let dir = tmp();
    let input = export(dir.path());
    let mut more = String::from(
        "timestamp,event_type,token_id,credential_id,principal,target_account,source_ip\n",
    );
    let mut access = |day: u32, n: u32, ip: &str| {
        more.push_str(&format!(
            "2025-01-{day:02}T1{}:{:02}:00Z,access,m{n},kid-new,V{n},V{n},{ip}\n",
            n % 10,
            n % 60
        ));
    };
    for (a, ip) in (10..14).map(|a| (a, format!("198.51.100.{a}"))) {
        for k in 0..25 {
            access(7 + k % 3, a * 100 + k, &ip);
        }
    }
    access(7, 9000, "198.51.100.200");
    for k in 0..30 {
        access(8, 5000 + k, "203.0.113.77");
    }
    for k in 0..3 {
        access(9, 7000 + k, "192.0.2.5");
    }
    write(&input.join("more.csv"), &more);
    let rows = analyze_ok(&dir.path().join("out"), &[input.to_str().unwrap()]);
    let from_source = |id: &str| {
        (rows.iter())
            .find(|r| r["entity_id"] == id)
            .map(|r| r["reasons"].clone())
            .filter(|reasons| reasons.contains("never_issued_tokens_from_source"))
    };
    let network = from_source("198.51.100.0/24").unwrap_or_else(|| panic!("{rows:#?}"));
    assert!(
        network.contains("101 access(es) from 198.51.100.0/24")
            && network.contains("for 101 subject(s)"),
        "{network}"
    );
    let lone = from_source("203.0.113.77").unwrap_or_else(|| panic!("{rows:#?}"));
    assert!(lone.contains("30 access(es) from 203.0.113.77"), "{lone}");
    for quiet in [
        "198.51.100.10",
        "198.51.100.13",
        "198.51.100.200",
        "192.0.2.5",
    ] {
        assert_eq!(from_source(quiet), None, "{quiet}: {rows:#?}");
    }
}
