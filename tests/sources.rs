use std::io::Write;

use serde_json::{Value, json};

use crate::util::*;

fn gz(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
}

/// A CloudTrail record shaped like the AWS record reference.
fn trail(time: &str, name: &str, user: &str, key: &str, ip: &str, extra: Value) -> Value {
    let mut r = json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDA000", "arn": format!("arn:aws:iam::123456789012:user/{user}"),
                         "accountId": "123456789012", "accessKeyId": key, "userName": user},
        "eventTime": time, "eventSource": "iam.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": ip, "userAgent": "aws-cli/2.15.0", "requestParameters": null, "responseElements": null,
        "recipientAccountId": "123456789012", "eventType": "AwsApiCall"
    });
    if let (Value::Object(m), Value::Object(x)) = (&mut r, extra) {
        m.extend(x);
    }
    r
}

/// CloudTrail as delivered (gzip `Records` files in the AWSLogs tree) plus a CloudTrail Lake JSON
/// lines export; no inventory file, so keys come from CreateAccessKey / DeleteAccessKey.
#[test]
fn cloudtrail_key_reuse_after_offboarding_and_after_deletion() {
    let dir = tmp();
    let input = dir.path().join("export");
    write(
        &input.join("roster.csv"),
        "employee_id,name,department,hire_date,termination_date\nalice,Alice,eng,2020-01-01,2025-01-31\nbob,Bob,eng,2020-01-01,\nadmin,Admin,it,2020-01-01,\n",
    );
    let day1 = vec![
        trail(
            "2025-01-03T09:00:00Z",
            "CreateAccessKey",
            "admin",
            "AKIAADMIN",
            "10.0.0.5",
            json!({"requestParameters": {"userName": "bob"}, "responseElements": {"accessKey": {"accessKeyId": "AKIABOB", "userName": "bob", "status": "Active"}}}),
        ),
        trail(
            "2025-01-05T09:00:00Z",
            "CreateAccessKey",
            "admin",
            "AKIAADMIN",
            "10.0.0.5",
            json!({"requestParameters": {"userName": "alice"}, "responseElements": {"accessKey": {"accessKeyId": "AKIAALICE", "userName": "alice", "status": "Active"}}}),
        ),
        trail(
            "2025-01-15T09:00:00Z",
            "DeleteAccessKey",
            "admin",
            "AKIAADMIN",
            "10.0.0.5",
            json!({"requestParameters": {"userName": "bob", "accessKeyId": "AKIABOB"}}),
        ),
        trail(
            "2025-01-20T09:00:00Z",
            "ListBuckets",
            "alice",
            "AKIAALICE",
            "10.0.0.7",
            json!({"eventSource": "s3.amazonaws.com"}),
        ),
        trail(
            "2025-01-21T09:00:00Z",
            "ConsoleLogin",
            "carol",
            "",
            "198.51.100.3",
            json!({"responseElements": {"ConsoleLogin": "Failure"}, "errorMessage": "Failed authentication"}),
        ),
    ];
    let tree = input.join("AWSLogs/123456789012/CloudTrail/us-east-1/2025/01/05");
    gz(
        &tree.join("123456789012_CloudTrail_us-east-1_20250105T0900Z_a1.json.gz"),
        &json!({"Records": day1}).to_string(),
    );
    let later = [
        trail(
            "2025-02-10T03:00:00Z",
            "GetObject",
            "alice",
            "AKIAALICE",
            "203.0.113.50",
            json!({"eventSource": "s3.amazonaws.com", "requestParameters": {"bucketName": "customer-data"}}),
        ),
        trail(
            "2025-01-25T03:00:00Z",
            "GetObject",
            "bob",
            "AKIABOB",
            "203.0.113.51",
            json!({"eventSource": "s3.amazonaws.com", "requestParameters": {"bucketName": "customer-data"}}),
        ),
    ];
    let lines: Vec<String> = later.iter().map(Value::to_string).collect();
    write(
        &input.join("lake/cloudtrail-lake-export.jsonl"),
        &(lines.join("\n") + "\n"),
    );

    let out_dir = dir.path().join("out");
    let rows = analyze_ok(&out_dir, &[input.to_str().unwrap()]);
    let reasons = |id: &str| reasons_of(&rows, id);
    assert!(
        reasons("AKIAALICE").contains("used_after_owner_left"),
        "{rows:#?}"
    );
    assert!(
        reasons("alice").contains("principal_used_after_departure"),
        "{rows:#?}"
    );
    assert!(
        reasons("AKIABOB").contains("used_after_revocation"),
        "{rows:#?}"
    );
    assert_eq!(rank_of(&rows, "AKIAADMIN"), None, "{rows:#?}");
    let summary = summary_md(&out_dir);
    assert!(
        summary.contains("| cloudtrail |"),
        "format shown: {summary}"
    );
    assert!(
        summary.contains("key creation / deletion events"),
        "derived inventory announced: {summary}"
    );
}

fn okta(
    published: &str,
    event_type: &str,
    actor: &str,
    target: Option<&str>,
    ip: &str,
    result: &str,
) -> Value {
    json!({
        "uuid": format!("{published}-{event_type}"), "published": published, "eventType": event_type, "version": "0",
        "severity": "INFO", "displayMessage": event_type,
        "actor": {"id": format!("00u{actor}"), "type": "User", "alternateId": actor, "displayName": actor},
        "client": {"ipAddress": ip, "userAgent": {"rawUserAgent": "Mozilla/5.0", "os": "Mac OS X", "browser": "CHROME"}},
        "outcome": {"result": result, "reason": null},
        "target": target.map(|t| vec![json!({"id": format!("00u{t}"), "type": "User", "alternateId": t})]).unwrap_or_default(),
        "authenticationContext": {"externalSessionId": "102abcd", "credentialType": "PASSWORD"}
    })
}

/// Okta System Log as the API returns it (JSON array) and as JSON lines; no roster file, so
/// departures come from user.lifecycle.deactivate.
#[test]
fn okta_login_after_deactivation() {
    let dir = tmp();
    let input = dir.path().join("okta");
    let api = json!([
        okta(
            "2025-01-20T08:00:00.000Z",
            "user.session.start",
            "alice@example.com",
            None,
            "198.51.100.20",
            "SUCCESS"
        ),
        okta(
            "2025-02-01T17:00:00.000Z",
            "user.lifecycle.deactivate",
            "admin@example.com",
            Some("alice@example.com"),
            "10.1.1.1",
            "SUCCESS"
        ),
        okta(
            "2025-02-03T08:00:00.000Z",
            "user.session.start",
            "dave@example.com",
            None,
            "198.51.100.21",
            "FAILURE"
        ),
    ]);
    gz(&input.join("system-log-2025-02.json.gz"), &api.to_string());
    let later = okta(
        "2025-02-05T22:00:00.000Z",
        "user.session.start",
        "alice@example.com",
        None,
        "203.0.113.60",
        "SUCCESS",
    );
    write(&input.join("system-log.ndjson"), &format!("{later}\n"));
    let out_dir = dir.path().join("out");
    let rows = analyze_ok(&out_dir, &[input.to_str().unwrap()]);
    let alice = rows
        .iter()
        .find(|r| r["entity_id"] == "alice@example.com")
        .expect("alice flagged");
    assert!(
        alice["reasons"].contains("principal_used_after_departure"),
        "{alice:?}"
    );
    assert!(
        alice["top_sources"].contains("203.0.113.60") || alice["reasons"].contains("1 source"),
        "{alice:?}"
    );
    assert_eq!(rank_of(&rows, "dave@example.com"), None);
}

/// sshd and sudo lines from /var/log/auth.log; the year comes from --syslog-year.
#[test]
fn auth_log_login_after_departure() {
    let dir = tmp();
    let input = dir.path().join("logs");
    write(
        &input.join("roster.csv"),
        "employee_id,name,department,hire_date,termination_date\nalice,Alice,ops,2020-01-01,2025-02-28\nbob,Bob,ops,2020-01-01,\n",
    );
    write(
        &input.join("var/log/auth.log"),
        "Feb 27 09:00:01 bastion sshd[811]: Accepted publickey for alice from 10.2.0.7 port 50022 ssh2\n\
         Feb 27 09:10:01 bastion CRON[900]: pam_unix(cron:session): session opened for user root(uid=0)\n\
         Mar  3 02:14:07 bastion sshd[1201]: Accepted publickey for alice from 203.0.113.5 port 41822 ssh2\n\
         Mar  3 02:15:11 bastion sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/pg_dump customers\n\
         Mar  3 04:00:00 bastion sshd[1300]: Invalid user oracle from 198.51.100.66 port 4000\n\
         Mar  3 04:00:01 bastion sshd[1300]: Failed password for invalid user oracle from 198.51.100.66 port 4000 ssh2\n\
         this line is not syslog\n",
    );
    write(&input.join("secure.log.gz.txt"), "");
    let out_dir = dir.path().join("out");
    let rows = analyze_ok(
        &out_dir,
        &[input.to_str().unwrap(), "--syslog-year", "2025"],
    );
    let alice = rows
        .iter()
        .find(|r| r["entity_id"] == "alice")
        .expect("alice flagged");
    assert!(
        alice["reasons"].contains("principal_used_after_departure")
            && alice["first_seen"].starts_with("2025-03-03"),
        "{alice:?}"
    );
    let rejects = read_csv(&out_dir.join("rejects.csv"));
    assert!(rejects.iter().any(|r| r["line"] == "7"), "{rejects:?}");
    let summary = summary_md(&out_dir);
    assert!(
        summary.contains("| authlog | 7 | 5 | 1 | 1 |"),
        "records = parsed + rejected + ignored: {summary}"
    );
    assert!(
        summary.contains("secure.log.gz.txt: empty file"),
        "unknown file skipped and named: {summary}"
    );
}

/// A VPN export with its own columns, time format, delimiter and value names, read through a
/// user profile, end to end.
#[test]
fn mapping_profile_reads_a_foreign_csv() {
    let dir = tmp();
    let input = dir.path().join("vpn");
    write(
        &input.join("roster.csv"),
        "employee_id,name,department,hire_date,termination_date\nalice,Alice,ops,2020-01-01,2025-02-28\n",
    );
    write(
        &input.join("vpn-sessions.txt"),
        "When;Who;Where;Result;Kind\n\
         27/02/2025 18:00;alice;198.51.100.7;OK;Logon\n\
         03/03/2025 23:30;alice;203.0.113.7;OK;Logon\n\
         03/03/2025 23:40;alice;203.0.113.7;OK;Heartbeat\n\
         04/03/2025 01:00;alice;203.0.113.7;MAYBE;Logon\n",
    );
    let profile = dir.path().join("vpn.toml");
    write(
        &profile,
        r#"
name = "acme-vpn"
format = "csv"
delimiter = ";"

[fields]
timestamp = "When"
event_type = "Kind"
principal = "Who"
source_ip = "Where"
outcome = "Result"

[time]
format = "%d/%m/%Y %H:%M"
timezone = "Europe/Berlin"

[values.event_type]
"Logon" = "login"

[values.outcome]
"OK" = "success"
"FAIL" = "failure"

[[filter]]
field = "Kind"
equals = ["Logon", "Logoff"]
"#,
    );
    let out_dir = dir.path().join("out");
    let rows = analyze_ok(
        &out_dir,
        &[
            input.to_str().unwrap(),
            "--profile",
            profile.to_str().unwrap(),
        ],
    );
    let alice = rows
        .iter()
        .find(|r| r["entity_id"] == "alice")
        .expect("alice flagged");
    // 23:30 in Berlin on 3 March is 22:30 UTC.
    assert_eq!(
        alice["first_seen"], "2025-03-03T22:30:00+00:00",
        "{alice:?}"
    );
    let rejects = read_csv(&out_dir.join("rejects.csv"));
    assert!(
        rejects
            .iter()
            .any(|r| r["line"] == "5" && r["reason"].contains("MAYBE")),
        "{rejects:?}"
    );
    let summary = summary_md(&out_dir);
    assert!(
        summary.contains("profile:acme-vpn | 4 | 2 | 1 | 1 |"),
        "{summary}"
    );
}

#[test]
fn inspect_reports_formats_fill_rates_and_unknown_files() {
    let out = bin()
        .arg("inspect")
        .arg(repo().join("sample_logs"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("format csv") && text.contains("format jsonl"),
        "{text}"
    );
    assert!(text.contains("token_id 100%"), "{text}");
    assert!(
        text.contains("gaps 1 day(s) with no event"),
        "the issuer's gap day is visible: {text}"
    );
    let dir = tmp();
    write(&dir.path().join("notes.md"), "# not logs\n");
    let out = bin().arg("inspect").arg(dir.path()).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("SKIPPED"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Fields the frame does not keep (user agent, action, records) are still counted per file.
#[test]
fn inspect_counts_fields_the_frame_does_not_keep() {
    let dir = tmp();
    write(
        &dir.path().join("events.csv"),
        "timestamp,event_type,principal,user_agent,action,records\n\
         2025-03-01T10:00:00Z,access,a,curl/8,GET /x,3\n\
         2025-03-01T10:01:00Z,access,b,,GET /y,\n\
         2025-03-01T10:02:00Z,access,c,,,\n",
    );
    let out = bin().arg("inspect").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("principal 100% · credential_id 0% · token_id 0% · source_ip 0% · user_agent 33% · action 67% · target_account 0% · event_type 100% · records 33% · bytes 0%"),
        "{text}"
    );
}

/// A log tree as exported: `current` links to a dated folder that is also there, a link points
/// back up the tree, another points nowhere. Each file is read once, the loop is not followed,
/// and the dangling link is counted as a reject rather than dropped.
#[test]
fn symlinked_folders_are_read_once_and_loops_are_not_followed() {
    let dir = tmp();
    let input = dir.path().join("export");
    write(
        &input.join("2025-06-01/access.csv"),
        "timestamp,event_type,principal\n2025-06-01T10:00:00Z,login,E1\n2025-06-01T11:00:00Z,login,E2\n",
    );
    std::os::unix::fs::symlink("2025-06-01", input.join("current")).unwrap();
    std::os::unix::fs::symlink("..", input.join("2025-06-01/up")).unwrap();
    std::os::unix::fs::symlink("/no/such/file.csv", input.join("gone.csv")).unwrap();
    let out_dir = dir.path().join("out");
    // The dangling link is an input that cannot be read: reported with --keep-going (exit 3).
    let o = analyze(&out_dir, &[input.to_str().unwrap(), "--keep-going"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let summary = summary_md(&out_dir);
    assert!(summary.contains("INCOMPLETE INPUT"), "{summary}");
    assert!(
        summary.contains("2025-06-01/access.csv | csv | 2 | 2 | 0 |"),
        "{summary}"
    );
    assert!(
        !summary.contains("current/access.csv"),
        "read twice: {summary}"
    );
    assert!(summary.contains("| total |  | 3 | 2 | 1 |"), "{summary}");
    let rejects = read_csv(&out_dir.join("rejects.csv"));
    assert!(
        rejects.iter().any(|r| r["file"].ends_with("gone.csv")),
        "{rejects:?}"
    );
}

/// `/var/log/messages` as older distributions wrote it: PAM-tagged programs, syslogd's restart
/// line and `-- MARK --` are read as syslog (failed logins or ignored lines), none rejected.
#[test]
fn messages_with_pam_tags_marks_and_restarts_reject_nothing() {
    let dir = tmp();
    let input = dir.path().join("logs");
    write(
        &input.join("var/log/messages"),
        "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4  user=root\n\
         Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown\n\
         Jun 14 15:16:02 combo sshd(pam_unix)[19937]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4\n\
         Jun 15 02:04:59 combo su(pam_unix)[20882]: session opened for user cyrus by (uid=0)\n\
         Jun 15 02:04:59 combo su(pam_unix)[20882]: session closed for user cyrus\n\
         Jun 15 04:06:18 combo logrotate: ALERT exited abnormally with [1]\n\
         Jun 15 04:06:20 combo syslogd 1.4.1: restart.\n\
         Jun 15 04:06:20 combo -- MARK --\n\
         Jun 15 04:12:42 combo sshd[811]: Failed password for invalid user test from 218.188.2.4 port 4242 ssh2\n",
    );
    let out_dir = dir.path().join("out");
    analyze_ok(
        &out_dir,
        &[input.to_str().unwrap(), "--syslog-year", "2005"],
    );
    let summary = summary_md(&out_dir);
    assert!(
        summary.contains("| authlog | 9 | 3 | 0 | 6 |"),
        "three failed logins parsed, six other lines ignored, nothing rejected: {summary}"
    );
}

/// A headerless authentication export (as many VPN and domain exports come): the profile names
/// columns by position, and the first line is a record, not a header.
#[test]
fn a_headerless_csv_is_read_by_column_position() {
    let dir = tmp();
    let input = dir.path().join("vpn");
    write(
        &input.join("roster.csv"),
        "employee_id,name,department,hire_date,termination_date\nalice,Alice,ops,2020-01-01,2025-02-28\n",
    );
    write(
        &input.join("auth-export.csv"),
        "2025-03-01 09:00:00,alice,203.0.113.7,LOGIN,OK\n\
         2025-03-01 09:05:00,bob,10.0.0.8,LOGIN,DENIED\n\
         2025-03-02 10:00:00,alice,203.0.113.7,LOGIN,OK\n",
    );
    let profile = dir.path().join("headerless.toml");
    write(
        &profile,
        r#"
name = "headerless-auth"
format = "csv"
has_header = false

[fields]
timestamp = "1"
principal = "2"
source_ip = "3"
event_type = "4"
outcome = "5"

[values.event_type]
"LOGIN" = "login"

[values.outcome]
"OK" = "success"
"*" = "failure"
"#,
    );
    let out_dir = dir.path().join("out");
    let rows = analyze_ok(
        &out_dir,
        &[
            input.to_str().unwrap(),
            "--profile",
            profile.to_str().unwrap(),
            "--source",
            "profile",
        ],
    );
    let alice = reasons_of(&rows, "alice");
    assert!(alice.contains("used successfully 2 time(s)"), "{rows:#?}");
    let summary = summary_md(&out_dir);
    assert!(
        summary.contains("| 3 | 3 | 0 | 0 |"),
        "all three lines are records: {summary}"
    );
}

/// `journalctl -o json` on a current distribution: sshd's entries are read as the syslog lines
/// they stand for, other units' entries are ignored, a broken entry is a reject.
#[test]
fn journald_json_export_is_read_like_auth_log() {
    let dir = tmp();
    let input = dir.path().join("journal");
    write(
        &input.join("roster.csv"),
        "employee_id,name,department,hire_date,termination_date\nalice,Alice,ops,2020-01-01,2025-02-28\n",
    );
    let entry = |micros: &str, ident: &str, msg: &str| {
        serde_json::json!({
            "__REALTIME_TIMESTAMP": micros, "_HOSTNAME": "bastion", "SYSLOG_IDENTIFIER": ident,
            "_PID": "811", "MESSAGE": msg, "PRIORITY": "6", "_SYSTEMD_UNIT": format!("{ident}.service")
        })
        .to_string()
    };
    let lines = [
        // 2025-03-03T02:14:07Z
        entry(
            "1740968047000000",
            "sshd",
            "Accepted publickey for alice from 203.0.113.5 port 41822 ssh2",
        ),
        entry(
            "1740968050000000",
            "sshd",
            "Failed password for invalid user oracle from 198.51.100.66 port 4000 ssh2",
        ),
        entry(
            "1740968051000000",
            "systemd",
            "Started Session 4 of User alice.",
        ),
        r#"{"__REALTIME_TIMESTAMP":"1740968052000000","MESSAGE":[104,105]}"#.to_string(),
    ];
    write(&input.join("journal.json"), &(lines.join("\n") + "\n"));
    let out_dir = dir.path().join("out");
    let rows = analyze_ok(&out_dir, &[input.to_str().unwrap()]);
    let alice = rows
        .iter()
        .find(|r| r["entity_id"] == "alice")
        .expect("alice flagged");
    assert!(
        alice["reasons"].contains("principal_used_after_departure")
            && alice["first_seen"] == "2025-03-03T02:14:07+00:00",
        "{alice:?}"
    );
    let summary = summary_md(&out_dir);
    assert!(
        summary.contains("| journald | 4 | 2 | 1 | 1 |"),
        "{summary}"
    );
}
