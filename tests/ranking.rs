//! Ranking properties on an export built here, in the gateway's CSV and the issuer's JSON lines,
//! with insiders `generate` does not plant: a current employee's API key scraping for a month, a
//! signing key minting a few tokens a day, and a support agent's one-night lookup spree.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::util::*;

type Row = HashMap<String, String>;

const ACCOUNTS: u32 = 40_000;
const DAYS: u32 = 40;

/// A small deterministic generator (the test must not depend on the crate's).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u32) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % u64::from(n)) as u32
    }
}

fn account(n: u32) -> String {
    format!("C{:06}", n + 1)
}

fn stamp(day: u32, second: u32) -> String {
    let (h, m, s) = (second / 3600 % 24, second / 60 % 60, second % 60);
    let date = chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap() + chrono::Days::new(day.into());
    format!("{date}T{h:02}:{m:02}:{s:02}Z")
}

/// What to plant besides normal traffic.
#[derive(Clone, Copy, Default)]
struct Plant {
    /// Hour (UTC) the one-night burst starts, on day 30.
    burst_hour: u32,
    /// The issuer keeps signing with `kid-old`, whose custodian E99 left on day 10.
    departed_custodian: bool,
}

/// 40 days of gateway access (customers reading their own account, ten support agents looking
/// up ~30 accounts a day), the issuer's log, roster and inventory, plus:
/// - `ak-scraper` (API key of current engineer E77): 500 never-seen accounts a day for the last
///   30 days, still scraping on the last day — 15,000 accounts;
/// - `kid-mint` (a signing key the issuer also uses): 20–40 tokens a day the issuer never
///   issued, for three weeks — about 630 accounts;
/// - support agent E1 (`10.1.0.1`): ~30 lookups a day, and on day 30 6,000 accounts in one night.
fn export(dir: &Path, plant: Plant) -> PathBuf {
    let input = dir.join("export");
    let mut rng = Lcg(7);
    let mut access = String::from(
        "timestamp,event_type,token_id,credential_id,principal,target_account,source_ip,outcome,action,user_agent\n",
    );
    let mut issued = String::new();
    let line = |out: &mut String,
                day: u32,
                sec: u32,
                token: &str,
                key: &str,
                who: &str,
                target: &str,
                ip: &str| {
        let _ = writeln!(
            out,
            "{},access,{token},{key},{who},{target},{ip},success,GET /api/v2/members/{{id}}/addresses,app/1.0",
            stamp(day, sec)
        );
    };
    for day in 0..DAYS {
        // Customers read their own records with tokens the issuer issued.
        for i in 0..400 {
            let c = account(rng.below(ACCOUNTS));
            let token = format!("t{day}-{i}");
            let key = if i % 2 == 0 { "kid-main" } else { "kid-mint" };
            let key = if plant.departed_custodian && i % 5 == 0 {
                "kid-old"
            } else {
                key
            };
            let sec = 3600 + i * 120;
            let _ = writeln!(
                issued,
                "{{\"timestamp\":\"{}\",\"event_type\":\"token_issued\",\"token_id\":\"{token}\",\"credential_id\":\"{key}\",\"principal\":\"{c}\",\"source_ip\":\"100.64.{}.{}\"}}",
                stamp(day, sec),
                i / 200,
                i % 200
            );
            line(
                &mut access,
                day,
                sec + 30,
                &token,
                key,
                &c,
                &c,
                &format!("100.64.{}.{}", i / 200, i % 200),
            );
        }
        // Ten support agents, ~30 lookups a day each, from their desks.
        for agent in 1..=10 {
            for k in 0..30 {
                let target = account(rng.below(ACCOUNTS));
                line(
                    &mut access,
                    day,
                    32_400 + agent * 700 + k * 20,
                    "",
                    "",
                    &format!("E{agent}"),
                    &target,
                    &format!("10.1.0.{agent}"),
                );
            }
        }
        // The month-long scraper: 500 new accounts a day, ongoing on the last day.
        if day >= DAYS - 30 {
            for k in 0..500 {
                let n = 20_000 + (day - (DAYS - 30)) * 500 + k;
                line(
                    &mut access,
                    day,
                    50_000 + k * 60,
                    "",
                    "ak-scraper",
                    "E77",
                    &account(n),
                    "10.2.0.7",
                );
            }
        }
        // The minting key: 20–40 never-issued tokens a day for three weeks, from outside.
        if (5..26).contains(&day) {
            for k in 0..(20 + rng.below(21)) {
                let c = account(rng.below(ACCOUNTS));
                line(
                    &mut access,
                    day,
                    7_200 + k * 300,
                    &format!("m{day}-{k}"),
                    "kid-mint",
                    &c,
                    &c,
                    "198.51.100.7",
                );
            }
        }
        // The one-night spree: 6,000 accounts in two hours.
        if day == 30 {
            for k in 0..6_000 {
                line(
                    &mut access,
                    day,
                    plant.burst_hour * 3600 + k,
                    "",
                    "",
                    "E1",
                    &account(30_000 + k % 10_000),
                    "10.1.0.1",
                );
            }
        }
    }
    write(&input.join("gateway/access.csv"), &access);
    write(&input.join("issuer/tokens.jsonl"), &issued);
    let mut roster = String::from("employee_id,name,department,hire_date,termination_date\n");
    for agent in 1..=10 {
        let _ = writeln!(roster, "E{agent},Agent {agent},support,2020-01-01,");
    }
    roster.push_str("E77,Eve,engineering,2020-01-01,\nE88,Kim,platform,2020-01-01,\nE99,Lee,platform,2020-01-01,2025-03-11\n");
    write(&input.join("roster.csv"), &roster);
    write(
        &input.join("credentials.csv"),
        "credential_id,owner,kind,created,revoked\nkid-main,E88,signing_key,2024-01-01,\nkid-mint,E88,signing_key,2024-01-01,\nkid-old,E99,signing_key,2024-01-01,\nak-scraper,E77,api_key,2024-06-01,\n",
    );
    input
}

fn run(dir: &Path, input: &Path, extra: &[&str]) -> (Vec<Row>, Vec<serde_json::Value>) {
    let out = dir.join("out");
    let mut args = vec![input.to_str().unwrap()];
    args.extend_from_slice(extra);
    let rows = analyze_ok(&out, &args);
    let jsonl = std::fs::read_to_string(out.join("anomalies.jsonl")).expect("jsonl");
    let json = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    (rows, json)
}

fn row<'a>(rows: &'a [Row], id: &str) -> &'a Row {
    rows.iter()
        .find(|r| r["entity_id"] == id)
        .unwrap_or_else(|| panic!("{id} not ranked: {rows:#?}"))
}

fn incident(rows: &[Row], id: &str) -> usize {
    row(rows, id)["incident"].parse().expect("incident number")
}

fn world() -> &'static (tempfile::TempDir, Vec<Row>, Vec<serde_json::Value>) {
    static W: std::sync::OnceLock<(tempfile::TempDir, Vec<Row>, Vec<serde_json::Value>)> =
        std::sync::OnceLock::new();
    W.get_or_init(|| {
        let dir = tmp();
        let input = export(
            dir.path(),
            Plant {
                burst_hour: 1,
                ..Plant::default()
            },
        );
        let (rows, json) = run(dir.path(), &input, &[]);
        (dir, rows, json)
    })
}

#[test]
fn a_month_long_scraper_of_more_accounts_outranks_a_one_night_burst_of_fewer() {
    let (_, rows, _) = world();
    assert!(
        incident(rows, "ak-scraper") < incident(rows, "E1"),
        "{rows:#?}"
    );
    assert!(row(rows, "ak-scraper")["reasons"].contains("low_and_slow_reach"));
}

#[test]
fn a_never_issued_token_signing_key_outranks_a_bigger_single_employee_enumeration() {
    let (_, rows, _) = world();
    let mint = row(rows, "kid-mint");
    assert!(mint["reasons"].contains("never_issued_tokens"), "{mint:?}");
    assert_eq!(mint["severity"], "critical");
    assert!(
        incident(rows, "kid-mint") < incident(rows, "E1"),
        "{rows:#?}"
    );
}

/// The evidence names what the key was used for and with which client, with counts.
#[test]
fn evidence_names_the_endpoints_and_clients() {
    let (dir, _, json) = world();
    let mint = json
        .iter()
        .find(|j| j["entity"]["id"] == "kid-mint")
        .expect("kid-mint in JSON lines");
    assert_eq!(
        mint["endpoints"][0][0],
        "GET /api/v2/members/{id}/addresses"
    );
    assert!(mint["endpoints"][0][1].as_u64().unwrap() > 600, "{mint}");
    assert_eq!(mint["clients"][0][0], "app/1.0");
    let summary = summary_md(&dir.path().join("out"));
    assert!(
        summary.contains("**Endpoints**: GET /api/v2/members/{id}/addresses ("),
        "{summary}"
    );
}

#[test]
fn one_incident_holds_one_place_and_rows_are_sorted_by_incident() {
    let (_, rows, _) = world();
    // The agent's principal and desk address are one incident.
    assert_eq!(incident(rows, "E1"), incident(rows, "10.1.0.1"));
    let numbers: Vec<usize> = rows
        .iter()
        .map(|r| r["incident"].parse().unwrap())
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort();
    assert_eq!(numbers, sorted, "CSV not sorted by incident");
    let ranks: Vec<usize> = rows.iter().map(|r| r["rank"].parse().unwrap()).collect();
    assert_eq!(ranks, (1..=rows.len()).collect::<Vec<_>>());
    // Incidents are numbered without gaps, each starting with its strongest row.
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (ia, ib): (usize, usize) = (
            a["incident"].parse().unwrap(),
            b["incident"].parse().unwrap(),
        );
        assert!(ib == ia || ib == ia + 1);
        if ia == ib {
            let (sa, sb): (f64, f64) = (a["score"].parse().unwrap(), b["score"].parse().unwrap());
            assert!(sa >= sb, "{a:?} {b:?}");
        }
    }
}

#[test]
fn the_stdout_table_lists_each_incident_once() {
    let (dir, _, _) = world();
    let input = dir.path().join("export");
    let out = bin()
        .arg("analyze")
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("table-out"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let leads: Vec<&str> = table.lines().skip(1).filter(|l| !l.contains('└')).collect();
    // The agent and the agent's desk are one incident: one lead line, the other beneath it.
    let agent_leads = leads
        .iter()
        .filter(|l| l.contains(" E1 ") || l.contains(" 10.1.0.1 "))
        .count();
    assert_eq!(agent_leads, 1, "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains('└') && (l.contains(" E1 ") || l.contains(" 10.1.0.1 "))),
        "{table}"
    );
    let numbers: Vec<&str> = leads
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut unique = numbers.clone();
    unique.dedup();
    assert_eq!(numbers, unique, "{table}");
}

#[test]
fn no_share_exceeds_100_percent_and_the_population_is_named() {
    let (dir, rows, json) = world();
    for r in rows {
        let share: f64 = r["share_of_population"].parse().unwrap();
        assert!((0.0..=1.0).contains(&share), "{r:?}");
    }
    let percent = regex::Regex::new(r"([0-9]+(?:\.[0-9]+)?)% of").unwrap();
    for j in json {
        for reason in j["reasons"].as_array().unwrap() {
            let text = reason["reason"].as_str().unwrap();
            for cap in percent.captures_iter(text) {
                let p: f64 = cap[1].parse().unwrap();
                assert!(p <= 100.0, "{text}");
            }
        }
    }
    let summary = summary_md(&dir.path().join("out"));
    assert!(summary.contains("customer accounts"), "{summary}");
    assert!(
        summary.contains("distinct accounts named by access events"),
        "{summary}"
    );
}

#[test]
fn a_burst_is_never_labelled_low_and_slow() {
    let (_, rows, _) = world();
    for id in ["E1", "10.1.0.1"] {
        let reasons = &row(rows, id)["reasons"];
        assert!(
            reasons.contains("burst_over_own_baseline"),
            "{id}: {reasons}"
        );
        assert!(!reasons.contains("low_and_slow"), "{id}: {reasons}");
    }
}

/// 6,000 lookups from 22:00 to 23:40 in New York on 2025-03-31 are 02:00–03:40 UTC on April 1:
/// a New York run dates the burst March 31.
#[test]
fn a_non_utc_run_dates_the_burst_on_its_local_day() {
    let dir = tmp();
    // 02:00 UTC on day 30 (2025-03-31) is 22:00 on 2025-03-30 in New York (EDT, UTC−4).
    let input = export(
        dir.path(),
        Plant {
            burst_hour: 2,
            ..Plant::default()
        },
    );
    let (rows, json) = run(dir.path(), &input, &["--timezone", "America/New_York"]);
    let e1 = row(&rows, "E1");
    assert!(e1["reasons"].contains("on 2025-03-30"), "{e1:?}");
    let burst = json
        .iter()
        .find(|j| j["entity"]["id"] == "E1")
        .and_then(|j| {
            j["reasons"]
                .as_array()?
                .iter()
                .find(|r| r["code"] == "burst_over_own_baseline")
                .cloned()
        })
        .expect("burst reason");
    assert_eq!(burst["evidence"]["burst_day"], "2025-03-30");
    // The same export in UTC: March 31.
    let utc = tmp();
    let (rows, _) = run(utc.path(), &input, &[]);
    assert!(row(&rows, "E1")["reasons"].contains("on 2025-03-31"));
}

/// The issuer keeps signing with a key whose custodian left: rotate it, but it is not the
/// incident, and nothing under it was forged.
#[test]
fn a_departed_custodians_key_the_issuer_keeps_using_is_hygiene_not_critical() {
    let dir = tmp();
    let input = export(
        dir.path(),
        Plant {
            burst_hour: 1,
            departed_custodian: true,
        },
    );
    let (rows, _) = run(dir.path(), &input, &[]);
    let old = row(&rows, "kid-old");
    assert!(old["reasons"].contains("used_after_owner_left"), "{old:?}");
    assert!(
        matches!(old["severity"].as_str(), "low" | "medium"),
        "{old:?}"
    );
    assert!(incident(&rows, "kid-old") > incident(&rows, "kid-mint"));
}

/// Chile skips 2025-09-07 00:00 (clocks go to 01:00): a termination on 2025-09-06 ends access at
/// 01:00, and the run goes on.
#[test]
fn a_termination_date_whose_local_midnight_does_not_exist_runs() {
    let dir = tmp();
    let input = dir.path().join("in");
    write(
        &input.join("roster.csv"),
        "employee_id,name,department,hire_date,termination_date\nE5,Ana,finance,2020-01-01,2025-09-06\n",
    );
    write(
        &input.join("access.csv"),
        "timestamp,event_type,principal,target_account,source_ip\n\
         2025-09-06 18:00:00,login,E5,,10.0.0.5\n\
         2025-09-07 09:00:00,login,E5,,10.0.0.5\n",
    );
    let (rows, _) = run(dir.path(), &input, &["--timezone", "America/Santiago"]);
    let e5 = row(&rows, "E5");
    assert!(
        e5["reasons"].contains("principal_used_after_departure"),
        "{e5:?}"
    );
    assert!(e5["reasons"].contains("used successfully 1 time"), "{e5:?}");
}

fn trail(
    time: &str,
    name: &str,
    user: &str,
    key: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut r = serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "accountId": "123456789012", "accessKeyId": key, "userName": user},
        "eventTime": time, "eventSource": "iam.amazonaws.com", "eventName": name,
        "sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2.15.0", "requestParameters": null,
        "responseElements": null, "recipientAccountId": "123456789012"
    });
    if let (serde_json::Value::Object(m), serde_json::Value::Object(x)) = (&mut r, extra) {
        m.extend(x);
    }
    r
}

/// A `DeleteAccessKey` that AWS denied deleted nothing; one that succeeded did.
#[test]
fn a_failed_revocation_revokes_nothing() {
    let dir = tmp();
    let input = dir.path().join("in");
    let records = vec![
        trail(
            "2025-01-05T09:00:00Z",
            "DeleteAccessKey",
            "mallory",
            "AKIAMAL",
            serde_json::json!({"requestParameters": {"userName": "bob", "accessKeyId": "AKIABOB"},
                                  "errorCode": "AccessDenied", "errorMessage": "not authorized"}),
        ),
        trail(
            "2025-01-05T10:00:00Z",
            "DeleteAccessKey",
            "admin",
            "AKIAADM",
            serde_json::json!({"requestParameters": {"userName": "carol", "accessKeyId": "AKIACAROL"}}),
        ),
        trail(
            "2025-01-12T10:00:00Z",
            "ListBuckets",
            "bob",
            "AKIABOB",
            serde_json::json!({}),
        ),
        trail(
            "2025-01-12T10:00:00Z",
            "ListBuckets",
            "carol",
            "AKIACAROL",
            serde_json::json!({}),
        ),
    ];
    write(
        &input.join("trail.json"),
        &serde_json::json!({ "Records": records }).to_string(),
    );
    let (rows, _) = run(dir.path(), &input, &[]);
    assert!(
        reasons_of(&rows, "AKIACAROL").contains("used_after_revocation"),
        "{rows:#?}"
    );
    assert!(
        !reasons_of(&rows, "AKIABOB").contains("used_after_revocation"),
        "{rows:#?}"
    );
}

fn okta(time: &str, event: &str, actor: &str, target: &str) -> String {
    serde_json::json!({
        "published": time, "eventType": event, "uuid": format!("{time}{event}"),
        "actor": {"id": actor, "alternateId": actor},
        "client": {"ipAddress": "192.0.2.20", "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
        "outcome": {"result": "SUCCESS"},
        "target": [{"id": target, "alternateId": target}]
    })
    .to_string()
}

/// Suspended, then unsuspended: not a leaver. Suspended and left suspended: a leaver, whose
/// sign-in later that day is still inside the termination day, like a roster date.
#[test]
fn a_reactivated_user_is_not_a_leaver() {
    let dir = tmp();
    let input = dir.path().join("in");
    let lines = [
        okta(
            "2025-02-01T09:00:00Z",
            "user.lifecycle.suspend",
            "admin@x.com",
            "ann@x.com",
        ),
        okta(
            "2025-02-03T09:00:00Z",
            "user.lifecycle.unsuspend",
            "admin@x.com",
            "ann@x.com",
        ),
        okta(
            "2025-02-05T09:00:00Z",
            "user.session.start",
            "ann@x.com",
            "ann@x.com",
        ),
        okta(
            "2025-02-01T09:00:00Z",
            "user.lifecycle.deactivate",
            "admin@x.com",
            "ben@x.com",
        ),
        okta(
            "2025-02-01T15:00:00Z",
            "user.session.start",
            "ben@x.com",
            "ben@x.com",
        ),
        okta(
            "2025-02-05T09:00:00Z",
            "user.session.start",
            "ben@x.com",
            "ben@x.com",
        ),
    ];
    write(&input.join("okta.jsonl"), &(lines.join("\n") + "\n"));
    let (rows, _) = run(dir.path(), &input, &[]);
    assert!(
        !reasons_of(&rows, "ann@x.com").contains("after_departure"),
        "{rows:#?}"
    );
    let ben = reasons_of(&rows, "ben@x.com");
    assert!(ben.contains("principal_used_after_departure"), "{rows:#?}");
    assert!(
        ben.contains("1 time(s)") && ben.contains("2025-02-05"),
        "{ben}"
    );
}

/// 400 customers a day come through two /24s (a carrier NAT), each reading its own record: a
/// crowd, not one reader, however many accounts it adds up to.
#[test]
fn customers_behind_a_shared_address_are_not_an_enumeration() {
    let (_, rows, _) = world();
    for net in ["100.64.0.0/24", "100.64.1.0/24"] {
        if let Some(sev) = severity_of(rows, net) {
            assert!(matches!(sev.as_str(), "low" | "medium"), "{net}: {rows:#?}");
            assert!(incident(rows, net) > incident(rows, "E1"), "{rows:#?}");
        }
    }
    // The signing keys that serve every customer reach them all, by design.
    assert!(!reasons_of(rows, "kid-main").contains("low_and_slow"));
}

/// The variants `generate` plants besides the one the detectors were built around: a current
/// employee's key scraping for weeks, a quiet forger under the issuer's current key. In each, on
/// every seed, the planted incident is incident 1, led by the planted key, with the look-alike
/// (the support agent's one-night burst) below it.
#[test]
fn every_generated_variant_puts_its_planted_incident_first() {
    for variant in ["scraper", "quiet-forger", "kept-key"] {
        for seed in [1, 2, 3] {
            let input = generated_variant(seed, variant);
            let truth = truth(&input);
            assert_eq!(truth["variant"], variant);
            let dir = tmp();
            let rows = analyze_ok(&dir.path().join("out"), &[input.to_str().unwrap()]);
            let planted: Vec<&str> = truth["planted"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let lead = &rows[0];
            assert_eq!(
                lead["entity_id"], planted[0],
                "{variant} seed {seed}: {rows:#?}"
            );
            for id in &planted {
                assert_eq!(
                    incident(&rows, id),
                    1,
                    "{variant} seed {seed}: {id}: {rows:#?}"
                );
            }
            assert!(
                matches!(lead["severity"].as_str(), "critical" | "high"),
                "{lead:?}"
            );
            let burst = truth["burst_principal"].as_str().unwrap();
            if let Some(rank) = rank_of(&rows, burst) {
                assert!(
                    incident(&rows, burst) > 1,
                    "{variant} seed {seed}: rank {rank}"
                );
            }
        }
    }
}

/// Customers on a mobile carrier's addresses: each session from a random address of 40 carrier
/// /24s, each request reading the customer's own account with a token the issuer issued; beside
/// them a long tail of 400 addresses that each served one customer once, which puts the peers'
/// median reach at one account, and a forger at 203.0.113.9 minting 50 tokens a day, one per
/// victim, that the issuer never issued. The carrier networks reach hundreds of accounts each,
/// "far above" that tail — a crowd, not a reader. With the issuance log their tokens are vouched
/// for and nothing of theirs is ranked, while the forger's are proof. Without it, crowds are
/// compared with crowds: the carriers with each other (nothing), the forger reaching far more
/// than they do (visible, medium at most, saying why).
#[test]
fn carrier_crowds_are_customers_and_a_forger_among_them_is_not() {
    let dir = tmp();
    let mut rng = Lcg(11);
    let mut access = String::from(
        "timestamp,event_type,token_id,credential_id,principal,target_account,source_ip,outcome\n",
    );
    let mut issued =
        String::from("timestamp,event_type,token_id,credential_id,principal,source_ip\n");
    let mut token = 0u32;
    let mut session =
        |day: u32, second: u32, c: u32, ip: &str, access: &mut String, issued: &mut String| {
            token += 1;
            let _ = writeln!(
                issued,
                "{},token_issued,tk{token},kid-main,{},10.0.0.2",
                stamp(day, second),
                account(c)
            );
            for k in 0..3 {
                let _ = writeln!(
                    access,
                    "{},access,tk{token},kid-main,{},{},{ip},success",
                    stamp(day, second + 5 + k),
                    account(c),
                    account(c)
                );
            }
        };
    for day in 0..30 {
        for _ in 0..300 {
            let (c, second) = (rng.below(3000), 8 * 3600 + rng.below(12 * 3600));
            let ip = format!("81.2.{}.{}", rng.below(40), 1 + rng.below(250));
            session(day, second, c, &ip, &mut access, &mut issued);
        }
    }
    for i in 0..400 {
        let ip = format!("{}.{}.{}.9", 90 + i % 9, i / 9, i % 200);
        let (c, second) = (rng.below(3000), 8 * 3600 + rng.below(12 * 3600));
        session(i % 30, second, c, &ip, &mut access, &mut issued);
    }
    for day in 0..30 {
        for k in 0..50 {
            let victim = 3000 + (day * 50 + k) * 7 % 1500; // seven apart: no walk, only reach
            let _ = writeln!(
                access,
                "{},access,forged{victim},kid-main,{},{},203.0.113.9,success",
                stamp(day, 3600 + k * 60),
                account(victim),
                account(victim)
            );
        }
    }
    let input = dir.path().join("export");
    write(&input.join("gateway/access.csv"), &access);
    let with_log = input.join("issuer/issued.csv");
    write(&with_log, &issued);
    let (rows, _) = run(dir.path(), &input, &[]);
    let carrier = |r: &&Row| r["entity_id"].starts_with("81.2.");
    assert!(!rows.iter().any(|r| carrier(&r)), "{rows:#?}");
    // The forger's address, or its /24 (addresses in a flagged network are not repeated).
    let forger = |rows: &[Row]| -> Row {
        let found = rows
            .iter()
            .find(|r| r["entity_id"].starts_with("203.0.113."));
        found
            .cloned()
            .unwrap_or_else(|| panic!("forger not ranked: {rows:#?}"))
    };
    assert!(
        forger(&rows)["reasons"].contains("never_issued_tokens_from_source"),
        "{rows:#?}"
    );

    std::fs::remove_file(&with_log).expect("issuance log removed");
    let (rows, _) = run(&dir.path().join("without"), &input, &[]);
    assert!(!rows.iter().any(|r| carrier(&r)), "{rows:#?}");
    let forger = forger(&rows);
    assert!(
        matches!(forger["severity"].as_str(), "low" | "medium"),
        "{forger:#?}"
    );
    assert!(
        forger["reasons"].contains("customers behind a shared address"),
        "{forger:#?}"
    );
}

/// A partner's key reads ~500 accounts a day for six weeks, then ~20 a day for three months (its
/// traffic moved to a new key). Its busiest day is no burst: the weeks around it were as busy.
/// Another key, steady at ~20 a day, reads 2,000 in one day in the middle of those months: that
/// is a burst, measured against the weeks around it.
#[test]
fn a_change_of_regime_is_not_a_burst_and_a_spike_is() {
    let dir = tmp();
    let mut rng = Lcg(5);
    let mut access = String::from(
        "timestamp,event_type,credential_id,principal,target_account,source_ip,outcome\n",
    );
    for day in 0..130 {
        let busy = if day < 42 {
            480 + rng.below(40)
        } else {
            15 + rng.below(10)
        };
        for _ in 0..busy {
            let second = 9 * 3600 + rng.below(8 * 3600);
            let _ = writeln!(
                access,
                "{},access,ak-partner,svc-partner,{},10.7.0.1,success",
                stamp(day, second),
                account(rng.below(20_000))
            );
        }
        let steady = if day == 100 { 2000 } else { 15 + rng.below(10) };
        for k in 0..steady {
            let second = 9 * 3600 + k * 7 % (8 * 3600);
            let _ = writeln!(
                access,
                "{},access,ak-report,svc-report,{},10.7.0.2,success",
                stamp(day, second),
                account(rng.below(20_000))
            );
        }
    }
    let input = dir.path().join("export");
    write(&input.join("gateway/access.csv"), &access);
    let (rows, _) = run(dir.path(), &input, &[]);
    assert!(
        !reasons_of(&rows, "ak-partner").contains("burst"),
        "{rows:#?}"
    );
    let spike = reasons_of(&rows, "ak-report");
    assert!(
        spike.contains("burst: 19") && spike.contains("within four weeks of it"),
        "{rows:#?}"
    );
}
