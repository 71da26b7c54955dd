//! Attacks on the login itself, in an OpenSSH log written here in its real syntax: an address
//! that enumerates user names and then breaks into root, a password sprayer, a red-team account
//! that logs into far more hosts than its peers — among forty ordinary users whose own failures
//! must raise nothing.

use std::fmt::Write as _;

use crate::util::*;

fn stamp(minute: u32) -> String {
    let (day, h, m) = (1 + minute / 1440, minute / 60 % 24, minute % 60);
    format!("Mar {day:>2} {h:02}:{m:02}:{:02}", minute % 60)
}

pub(crate) fn auth_log() -> String {
    let mut log = String::new();
    let mut line = |minute: u32, host: &str, msg: &str| {
        let _ = writeln!(
            log,
            "{} {host} sshd[{}]: {msg}",
            stamp(minute),
            1000 + minute % 5000
        );
    };
    // Forty users, each on two hosts, a login a day for a week, a mistyped password now and then.
    for day in 0..7 {
        for u in 0..40 {
            let minute = day * 1440 + 480 + u * 7;
            let host = format!("web{}", (u + day) % 2 + u % 20 * 2);
            let ip = format!("10.0.{}.{}", u / 200, u % 200 + 10);
            if (u + day) % 9 == 0 {
                line(
                    minute,
                    &host,
                    &format!("Failed password for user{u} from {ip} port 5000 ssh2"),
                );
            }
            line(
                minute + 1,
                &host,
                &format!("Accepted password for user{u} from {ip} port 5000 ssh2"),
            );
        }
    }
    // The attacker: two dozen user names that do not exist, then 300 passwords for root in half
    // an hour, then root gets in.
    for (i, name) in [
        "admin", "oracle", "test", "guest", "pi", "ubuntu", "postgres", "git", "ftp", "mysql",
        "deploy", "jenkins", "nagios", "support", "user", "www", "backup", "tomcat", "hadoop",
        "redis", "elastic", "vagrant", "ansible", "dev",
    ]
    .iter()
    .enumerate()
    {
        line(
            3000 + i as u32 / 10,
            "bastion",
            &format!("Invalid user {name} from 203.0.113.66 port 4000"),
        );
        line(
            3000 + i as u32 / 10,
            "bastion",
            &format!("Failed password for invalid user {name} from 203.0.113.66 port 4000 ssh2"),
        );
    }
    for i in 0..300 {
        line(
            3003 + i / 10,
            "bastion",
            "Failed password for root from 203.0.113.66 port 4001 ssh2",
        );
    }
    line(
        3040,
        "bastion",
        "Accepted password for root from 203.0.113.66 port 4002 ssh2",
    );
    // The sprayer: one password tried on each of fifty users.
    for u in 0..50 {
        line(
            5000 + u,
            "bastion",
            &format!("Failed password for user{u} from 198.51.100.9 port 4100 ssh2"),
        );
    }
    // The red team: one account into 71 hosts in a day.
    for h in 0..71 {
        line(
            7000 + h,
            &format!("db{h:02}"),
            "Accepted publickey for redteam from 10.9.9.9 port 6000 ssh2",
        );
    }
    log
}

#[test]
fn enumeration_spraying_brute_force_and_fan_out_surface_and_ordinary_users_do_not() {
    let dir = tmp();
    let input = dir.path().join("logs");
    write(&input.join("var/log/auth.log"), &auth_log());
    let out = dir.path().join("out");
    let rows = analyze_ok(&out, &[input.to_str().unwrap(), "--syslog-year", "2025"]);
    let attacker = reasons_of(&rows, "203.0.113.66");
    assert!(attacker.contains("brute_force_then_success"), "{rows:#?}");
    assert!(attacker.contains("username_enumeration"), "{rows:#?}");
    assert!(
        matches!(
            severity_of(&rows, "203.0.113.66").as_deref(),
            Some("critical" | "high")
        ),
        "{rows:#?}"
    );
    let sprayer = reasons_of(&rows, "198.51.100.9");
    assert!(
        sprayer.contains("password_spraying") && sprayer.contains("over 50 distinct users"),
        "{rows:#?}"
    );
    let redteam = reasons_of(&rows, "redteam");
    assert!(redteam.contains("host_fan_out"), "{rows:#?}");
    // The break-in leads; ordinary users and their addresses raise nothing.
    assert_eq!(rows[0]["entity_id"], "203.0.113.66", "{rows:#?}");
    for r in &rows {
        let id = &r["entity_id"];
        assert!(
            !id.starts_with("10.0.") && !id.starts_with("user"),
            "ordinary {id} flagged: {r:?}"
        );
    }
    let summary = summary_md(&out);
    assert!(summary.contains("T1110.001"), "{summary}");
}

/// Okta and CloudTrail say in their own words that a sign-in named nobody: Okta's
/// `outcome.reason`, CloudTrail's `errorMessage` (which also hides the name it was given). One
/// address guessing names ranks first in each; users who mistype their password do not.
#[test]
fn okta_and_cloudtrail_unknown_user_sign_ins_are_username_enumeration() {
    use serde_json::json;
    let dir = tmp();
    let input = dir.path().join("logs");
    let okta = |minute: u32, user: &str, ip: &str, result: &str, reason: Option<&str>| {
        json!({
            "uuid": format!("e-{minute}-{user}"),
            "published": format!("2025-03-{:02}T{:02}:{:02}:00.000Z", 1 + minute / 1440, minute / 60 % 24, minute % 60),
            "eventType": "user.session.start",
            "version": "0",
            "severity": if result == "SUCCESS" { "INFO" } else { "WARN" },
            "displayMessage": "User login to Okta",
            "actor": {"id": if reason == Some("UNKNOWN_USER") { "unknown".to_string() } else { format!("00u{user}") }, "type": "User", "alternateId": user},
            "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0"}, "ipAddress": ip},
            "outcome": {"result": result, "reason": reason},
            "target": []
        })
        .to_string()
    };
    let trail = |minute: u32, user: &str, ip: &str, error: Option<&str>| {
        let mut r = json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": "123456789012", "userName": user},
            "eventTime": format!("2025-03-{:02}T{:02}:{:02}:00Z", 1 + minute / 1440, minute / 60 % 24, minute % 60),
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1",
            "sourceIPAddress": ip,
            "userAgent": "Mozilla/5.0",
            "requestParameters": null,
            "responseElements": {"ConsoleLogin": if error.is_some() { "Failure" } else { "Success" }},
            "eventType": "AwsConsoleSignIn",
            "recipientAccountId": "123456789012"
        });
        if let Some(e) = error {
            r["errorMessage"] = json!(e);
        }
        r
    };
    let (mut okta_lines, mut records) = (Vec::new(), Vec::new());
    for day in 0..5 {
        for u in 0..30 {
            let minute = day * 1440 + 480 + u * 3;
            let (user, ip) = (format!("user{u}@x.com"), format!("10.1.0.{}", u + 10));
            if (u + day) % 7 == 0 {
                okta_lines.push(okta(
                    minute,
                    &user,
                    &ip,
                    "FAILURE",
                    Some("INVALID_CREDENTIALS"),
                ));
                records.push(trail(
                    minute,
                    &format!("iam{u}"),
                    &ip,
                    Some("Failed authentication"),
                ));
            }
            okta_lines.push(okta(minute + 1, &user, &ip, "SUCCESS", None));
            records.push(trail(minute + 1, &format!("iam{u}"), &ip, None));
        }
    }
    for i in 0..15 {
        let guess = format!("guess{i}@x.com");
        okta_lines.push(okta(
            3000 + i,
            &guess,
            "203.0.113.80",
            "FAILURE",
            Some("UNKNOWN_USER"),
        ));
        records.push(trail(
            3000 + i,
            "HIDDEN_DUE_TO_SECURITY_REASONS",
            "198.51.100.77",
            Some("No username found in supplied account"),
        ));
    }
    write(
        &input.join("okta/system-log.jsonl"),
        &(okta_lines.join("\n") + "\n"),
    );
    write(
        &input.join("AWSLogs/123456789012/CloudTrail/us-east-1/2025/03/01/trail.json"),
        &json!({ "Records": records }).to_string(),
    );
    let out = dir.path().join("out");
    let rows = analyze_ok(&out, &[input.to_str().unwrap()]);
    for ip in ["203.0.113.80", "198.51.100.77"] {
        assert!(
            reasons_of(&rows, ip).contains("username_enumeration"),
            "{ip}: {rows:#?}"
        );
        assert!(
            rank_of(&rows, ip).is_some_and(|r| r <= 2),
            "{ip}: {rows:#?}"
        );
        assert!(
            !reasons_of(&rows, ip).contains("spraying"),
            "{ip}: {rows:#?}"
        );
    }
    for r in &rows {
        assert!(
            !r["entity_id"].starts_with("10.1.0."),
            "ordinary address flagged: {r:?}"
        );
    }
}

/// `/var/log/messages` as older distributions wrote it: PAM-tagged programs, `rhost=` as a host
/// name or an address, `su` sessions, syslogd restarts and `-- MARK --`. Every line is read or
/// ignored (none rejected), and the host that failed most, fast, ranks first, above one that
/// failed now and then over a day.
#[test]
fn a_pam_messages_file_is_read_whole_and_its_noisiest_failing_host_leads() {
    let mut log = String::new();
    let mut line = |minute: u32, prog: &str, msg: &str| {
        let (day, h, m) = (14 + minute / 1440, minute / 60 % 24, minute % 60);
        let _ = writeln!(
            log,
            "Jun {day:>2} {h:02}:{m:02}:{:02} combo {prog}: {msg}",
            minute % 60
        );
    };
    line(0, "syslogd 1.4.1", "restart.");
    for minute in (0..4 * 1440).step_by(20) {
        line(minute, "-- MARK --", "");
    }
    for i in 0..200 {
        line(
            600 + i / 8,
            &format!("sshd(pam_unix)[{}]", 19000 + i),
            "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=61-220-157-121.hinet-ip.hinet.net  user=root",
        );
        line(
            600 + i / 8,
            &format!("sshd(pam_unix)[{}]", 19000 + i),
            "check pass; user unknown",
        );
    }
    for i in 0..25 {
        line(
            2000 + i * 50,
            &format!("sshd(pam_unix)[{}]", 21000 + i),
            "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4  user=test",
        );
    }
    for i in 0..3 {
        line(
            3000 + i,
            &format!("sshd(pam_unix)[{}]", 22000 + i),
            "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=10.0.0.7  user=cyrus",
        );
    }
    for day in 0..4 {
        line(
            day * 1440 + 300,
            "su(pam_unix)[21416]",
            "session opened for user cyrus by (uid=0)",
        );
        line(
            day * 1440 + 301,
            "su(pam_unix)[21416]",
            "session closed for user cyrus",
        );
        line(
            day * 1440 + 302,
            "logrotate",
            "ALERT exited abnormally with [1]",
        );
        line(
            day * 1440 + 303,
            "kernel",
            "Linux version 2.6.5-1.358 (bhcompile@bugs.build.redhat.com)",
        );
    }
    // The stamps above put `-- MARK --` after a program slot; write them as syslogd does.
    let log = log.replace("combo -- MARK --: ", "combo -- MARK --");
    let dir = tmp();
    let input = dir.path().join("logs");
    write(&input.join("var/log/messages"), &log);
    let out = dir.path().join("out");
    let rows = analyze_ok(&out, &[input.to_str().unwrap(), "--syslog-year", "2005"]);
    let totals = std::fs::read_to_string(out.join("summary.md")).expect("summary");
    let lines = log.lines().count();
    assert!(
        totals.contains(&format!(
            "| authlog | {lines} | 228 | 0 | {} | 0 |",
            lines - 228
        )),
        "{totals}"
    );
    assert_eq!(
        rows[0]["entity_id"], "61-220-157-121.hinet-ip.hinet.net",
        "{rows:#?}"
    );
    assert!(rank_of(&rows, "10.0.0.7").is_none(), "{rows:#?}");
}

/// A month of a busy, ordinary sshd estate, about a million logins: 3,000 users behind three
/// office NATs or their own VPN addresses, each on its team's three hosts, mistyping a password
/// one login in 25 and a user name one in 2,000; fifteen admins on 25 hosts each (a role, not an
/// anomaly). Nothing in it is an attack, so nothing may rank above low.
#[test]
fn a_million_ordinary_logins_raise_nothing_above_low() {
    let dir = tmp();
    let input = dir.path().join("logs");
    let mut log = String::with_capacity(110 << 20);
    let mut n = 0u64;
    let mut hash = 0x9e37_79b9_7f4a_7c15u64;
    for day in 0..30u32 {
        for u in 0..3000u32 {
            let ip = if u < 2000 {
                format!("10.0.0.{}", u % 3 + 1)
            } else {
                format!("10.1.{}.{}", u / 250, u % 250 + 1)
            };
            for k in 0..11u32 {
                hash ^= hash << 13;
                hash ^= hash >> 7;
                hash ^= hash << 17;
                let second = 8 * 3600 + u * 3 + k * 3000;
                let stamp = format!(
                    "Mar {:>2} {:02}:{:02}:{:02}",
                    day + 1,
                    second / 3600 % 24,
                    second / 60 % 60,
                    second % 60
                );
                let host = if u < 15 {
                    format!("ops{:02}", (k + day * 11) % 25)
                } else {
                    format!("app{:03}", (u / 10 * 3 + k % 3) % 300)
                };
                if hash.is_multiple_of(2000) {
                    let typo = format!("usr{}x{}", u, hash % 97);
                    let _ = writeln!(
                        log,
                        "{stamp} {host} sshd[4242]: Invalid user {typo} from {ip} port 50000"
                    );
                    let _ = writeln!(
                        log,
                        "{stamp} {host} sshd[4242]: Failed password for invalid user {typo} from {ip} port 50000 ssh2"
                    );
                    n += 2;
                }
                if hash % 25 == 1 {
                    let _ = writeln!(
                        log,
                        "{stamp} {host} sshd[4242]: Failed password for user{u} from {ip} port 50000 ssh2"
                    );
                    n += 1;
                }
                let _ = writeln!(
                    log,
                    "{stamp} {host} sshd[4242]: Accepted password for user{u} from {ip} port 50000 ssh2"
                );
                n += 1;
            }
        }
    }
    assert!(n > 1_000_000, "{n}");
    write(&input.join("auth.log"), &log);
    drop(log);
    let out = dir.path().join("out");
    let rows = analyze_ok(&out, &[input.to_str().unwrap(), "--syslog-year", "2025"]);
    for r in &rows {
        assert!(
            matches!(r["severity"].as_str(), "low" | "informational"),
            "{r:?}"
        );
    }
}

/// A RHEL-style `/var/log/secure`, where one password attempt is logged two or three times: PAM's
/// `authentication failure` and `Failed password for …`, with `Invalid user X from …` before them
/// for a name that does not exist. The counts are attempts, not lines: a brute force of 120
/// passwords reads 120; a sprayer that tries two passwords on each of 30 users (four lines a
/// user) is spraying at 2.0 a user; and a scanner that offers keys only, whose `Invalid user`
/// lines are its only trace, is still enumerating names.
#[test]
fn pam_and_sshd_lines_of_one_attempt_count_once() {
    let mut log = String::new();
    let mut pid = 3000;
    let mut line = |minute: u32, msg: &str| {
        pid += 1;
        let (h, m) = (minute / 60 % 24, minute % 60);
        let _ = writeln!(
            log,
            "Mar  4 {h:02}:{m:02}:{:02} bastion sshd[{pid}]: {msg}",
            pid % 60
        );
    };
    for u in 0..12 {
        let ip = format!("10.1.0.{}", u + 10);
        line(
            480 + u,
            &format!("Accepted publickey for staff{u} from {ip} port 5000 ssh2"),
        );
    }
    for i in 0..120 {
        line(
            600 + i / 20,
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.50  user=root",
        );
        line(
            600 + i / 20,
            "Failed password for root from 192.0.2.50 port 41000 ssh2",
        );
    }
    for u in 0..30 {
        for _ in 0..2 {
            line(
                700 + u,
                &format!(
                    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.40  user=staff{u}"
                ),
            );
            line(
                700 + u,
                &format!("Failed password for staff{u} from 198.51.100.40 port 42000 ssh2"),
            );
        }
    }
    for name in [
        "admin", "oracle", "test", "guest", "pi", "ubuntu", "git", "ftp",
    ] {
        line(
            800,
            &format!("Invalid user {name} from 203.0.113.90 port 43000"),
        );
        line(
            800,
            &format!("Connection closed by invalid user {name} 203.0.113.90 port 43000 [preauth]"),
        );
    }
    let dir = tmp();
    let input = dir.path().join("secure");
    write(&input, &log);
    let out = dir.path().join("out");
    let rows = analyze_ok(&out, &[input.to_str().unwrap(), "--syslog-year", "2025"]);
    let brute = reasons_of(&rows, "192.0.2.50");
    assert!(
        brute.contains("brute force: 120 failed logins on root from 192.0.2.50 in 6 min"),
        "{rows:#?}"
    );
    let sprayer = reasons_of(&rows, "198.51.100.40");
    assert!(
        sprayer.contains("password spraying: 60 failed logins over 30 distinct users")
            && sprayer.contains("(2.0 per user"),
        "{rows:#?}"
    );
    let scanner = reasons_of(&rows, "203.0.113.90");
    assert!(
        scanner.contains("username enumeration: 8 attempt(s)"),
        "{rows:#?}"
    );
}

/// A domain's authentication export as the LANL data lays it out: no header, seconds counted
/// from the start of the capture, `user@domain` principals, computer accounts (`C42$@DOM1`) and
/// `ANONYMOUS LOGON` reaching dozens of hosts a day by design. One user, among users who reach
/// two or three hosts each, logs into 71 in an afternoon: compared with users, not with the
/// computer accounts, it is the finding, and no computer account is. Without the profile's
/// `origin` the relative seconds are rejected, and the reason says how to place them.
#[test]
fn a_user_fanning_out_among_wide_computer_accounts_is_found() {
    let mut rows: Vec<(u64, String)> = Vec::new();
    let mut add = |t: u64, who: &str, src: u32, dst: u32, ok: &str| {
        let line = format!("{t},{who},{who},C{src},C{dst},Kerberos,Network,LogOn,{ok}");
        rows.push((t, line));
    };
    for day in 0..10u64 {
        let base = day * 86_400;
        for u in 0..150u32 {
            let who = format!("U{u}@DOM1");
            for k in 0..3u64 {
                add(
                    base + 30_000 + u as u64 * 60 + k,
                    &who,
                    u,
                    1000 + (u * 7 + k as u32 % 2) % 500,
                    "Success",
                );
            }
        }
        for c in 0..40u32 {
            let who = format!("C{}$@DOM1", 2000 + c);
            for k in 0..40u32 {
                let dst = (c * 131 + k * 17 + day as u32 * 7) % 1500;
                add(
                    base + 1_000 + c as u64 * 100 + k as u64,
                    &who,
                    2000 + c,
                    dst,
                    "Success",
                );
            }
        }
        for k in 0..60u32 {
            add(
                base + 50_000 + k as u64,
                "ANONYMOUS LOGON@C586",
                100 + k * 13 % 900,
                586,
                "Success",
            );
        }
    }
    for h in 0..71u32 {
        add(
            6 * 86_400 + 40_000 + h as u64 * 30,
            "U77@DOM1",
            77,
            1500 + h,
            "Success",
        );
    }
    rows.sort();
    let csv: String = rows.iter().map(|(_, l)| format!("{l}\n")).collect();
    let profile = |origin: &str| {
        format!(
            "name = \"lanl-auth\"\nformat = \"csv\"\nhas_header = false\n\n[fields]\ntimestamp = \"1\"\n\
             principal = \"2\"\nsource_ip = \"4\"\ntarget_account = \"5\"\noutcome = \"9\"\n\n\
             [constants]\nevent_type = \"login\"\n\n[values.outcome]\n\"Success\" = \"success\"\n\
             \"Fail\" = \"failure\"\n\n[time]\nformat = \"epoch_s\"\n{origin}"
        )
    };
    let dir = tmp();
    let input = dir.path().join("auth.txt");
    write(&input, &csv);
    let placed = dir.path().join("lanl.toml");
    write(&placed, &profile("origin = \"2025-03-01T00:00:00Z\"\n"));
    let out = dir.path().join("out");
    let args = |p: &std::path::Path| {
        vec![
            input.to_str().unwrap().to_string(),
            "--profile".into(),
            p.to_str().unwrap().to_string(),
            "--source".into(),
            "profile".into(),
        ]
    };
    let a = args(&placed);
    let rows = analyze_ok(&out, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        rows.first().map(|r| r["entity_id"].as_str()),
        Some("U77@DOM1"),
        "{rows:#?}"
    );
    assert!(
        reasons_of(&rows, "U77@DOM1").contains("host_fan_out"),
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .all(|r| !r["entity_id"].contains('$') && !r["entity_id"].starts_with("ANONYMOUS")),
        "{rows:#?}"
    );
    // Placed from the origin: the capture's first day is 2025-03-01.
    assert!(
        rows[0]["first_seen"].starts_with("2025-03-01T"),
        "{rows:#?}"
    );

    let relative = dir.path().join("relative.toml");
    write(&relative, &profile(""));
    let out = dir.path().join("out-relative");
    let a = args(&relative);
    let o = analyze(&out, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rejects = std::fs::read_to_string(out.join("rejects.csv")).expect("rejects");
    assert_eq!(
        rejects.lines().count(),
        1 + csv.lines().count(),
        "{rejects:.400}"
    );
    assert!(rejects.contains("[time] origin"), "{rejects:.400}");
}
