//! Windows Security events, binary and exported: a real `.evtx` (the `evtx` crate's own sample,
//! `tests/fixtures/evtx/NOTICE.md`) reconciles record for record, and a domain's logons written
//! here as `evtx_dump -o jsonl` and Winlogbeat documents surface a red-team account's fan-out
//! over hosts and an address guessing user names, while ordinary users and the machines' own
//! SYSTEM sessions (which touch every host) raise nothing.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::util::*;

fn evtx_dump(minute: u32, id: u32, computer: &str, data: Value) -> Value {
    let (day, h, m) = (1 + minute / 1440, minute / 60 % 24, minute % 60);
    json!({"Event": {
        "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
            "EventID": id,
            "TimeCreated": {"#attributes": {"SystemTime": format!("2025-03-{day:02}T{h:02}:{m:02}:00.1234567Z")}},
            "EventRecordID": minute,
            "Channel": "Security",
            "Computer": computer
        },
        "EventData": data
    }})
}

fn logon(user: &str, ip: &str, logon_type: u32) -> Value {
    json!({"SubjectUserSid": "S-1-5-18", "TargetUserSid": "S-1-5-21-1004336348-1177238915-682003330-1105",
        "TargetUserName": user, "TargetDomainName": "CORP", "LogonType": logon_type,
        "LogonProcessName": "NtLmSsp ", "AuthenticationPackageName": "NTLM",
        "WorkstationName": "-", "IpAddress": ip, "IpPort": "50123"})
}

#[test]
fn a_real_evtx_file_reconciles_and_is_named() {
    let out = bin()
        .arg("inspect")
        .arg(repo().join("tests/fixtures/evtx"))
        .output()
        .expect("inspect runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // 4625 and 4776 are logins; 4611, 4673 and the firewall's 5152 / 5157 are not.
    assert!(
        text.contains("format evtx · records 7 = parsed 2 + rejected 0 + ignored 5"),
        "{text}"
    );
}

#[test]
fn domain_fan_out_and_guessed_names_surface_and_ordinary_logons_do_not() {
    let dir = tmp();
    let input = dir.path().join("logs");
    let mut dump = String::new();
    let mut push = |v: Value| {
        let _ = writeln!(dump, "{v}");
    };
    for day in 0..5 {
        for u in 0..40 {
            let minute = day * 1440 + 480 + u * 5;
            let user = format!("user{u:02}");
            let ip = format!("10.2.0.{}", u + 10);
            push(evtx_dump(
                minute,
                4624,
                &format!("WS{u:02}"),
                logon(&user, &ip, 2),
            ));
            push(evtx_dump(minute + 1, 4624, "FS01", logon(&user, &ip, 3)));
            if (u + day) % 11 == 0 {
                push(evtx_dump(
                    minute + 2,
                    4625,
                    "FS01",
                    json!({"TargetUserName": user, "Status": "0xc000006d", "SubStatus": "0xc000006a", "LogonType": 3, "IpAddress": ip}),
                ));
            }
            // Every host's own SYSTEM and window-manager sessions.
            push(evtx_dump(
                minute,
                4624,
                &format!("WS{u:02}"),
                json!({"TargetUserSid": "S-1-5-18", "TargetUserName": "SYSTEM", "LogonType": 0, "IpAddress": "-"}),
            ));
            push(evtx_dump(
                minute,
                4624,
                &format!("WS{u:02}"),
                json!({"TargetUserSid": "S-1-5-90-0-1", "TargetUserName": "DWM-1", "TargetDomainName": "Window Manager", "LogonType": 2}),
            ));
            push(evtx_dump(
                minute + 3,
                4634,
                &format!("WS{u:02}"),
                json!({"TargetUserName": user, "LogonType": 2}),
            ));
        }
    }
    // The red team: one account into 45 servers in an afternoon (ten times its peers' two).
    for h in 0..45 {
        push(evtx_dump(
            2 * 1440 + 780 + h,
            4624,
            &format!("SRV{h:03}"),
            logon("svc-audit", "10.9.9.9", 3),
        ));
    }
    // An outside address trying a dozen names the domain does not have.
    for (i, name) in [
        "admin",
        "administrator1",
        "backup",
        "scanner",
        "test",
        "guest1",
        "sql",
        "print",
        "it",
        "helpdesk",
        "web",
        "ftp",
    ]
    .iter()
    .enumerate()
    {
        push(evtx_dump(
            3 * 1440 + 60 + i as u32,
            4625,
            "VPN01",
            json!({"TargetUserName": name, "Status": "0xc000006d", "SubStatus": "0xc0000064", "LogonType": 3, "IpAddress": "::ffff:203.0.113.99"}),
        ));
    }
    write(&input.join("dc/security.jsonl"), &dump);
    // Winlogbeat shipped the VPN server's successful logons.
    let beat: Vec<String> = (0..5)
        .map(|i| {
            json!({"@timestamp": format!("2025-03-0{}T09:00:00.000Z", i + 1), "event": {"code": "4624"},
                "winlog": {"event_id": "4624", "computer_name": "VPN01", "channel": "Security",
                    "event_data": {"TargetUserName": format!("user{i:02}"), "TargetUserSid": "S-1-5-21-1-2-3-1001", "LogonType": "10", "IpAddress": "198.51.100.20"}}})
            .to_string()
        })
        .collect();
    write(
        &input.join("beats/winlogbeat.ndjson"),
        &(beat.join("\n") + "\n"),
    );
    let out = dir.path().join("out");
    let rows = analyze_ok(&out, &[input.to_str().unwrap()]);
    assert!(
        reasons_of(&rows, "svc-audit").contains("host_fan_out"),
        "{rows:#?}"
    );
    assert!(
        reasons_of(&rows, "203.0.113.99").contains("username_enumeration"),
        "{rows:#?}"
    );
    for r in &rows {
        let id = &r["entity_id"];
        assert!(
            !id.starts_with("user")
                && !id.starts_with("10.2.0.")
                && id != "SYSTEM"
                && id != "DWM-1",
            "ordinary {id} flagged: {r:?}"
        );
    }
    let summary = summary_md(&out);
    assert!(summary.contains("| windows |"), "{summary}");
    // Hosts and user names are what these findings count, not shares of any account base.
    assert!(
        summary.contains("45 distinct hosts, 45 events"),
        "{summary}"
    );
    assert!(summary.contains("12 distinct user names"), "{summary}");
    assert!(!summary.contains("% of 0"), "{summary}");
    let svc = rows
        .iter()
        .find(|r| r["entity_id"] == "svc-audit")
        .expect("listed");
    assert_eq!(
        (
            svc["accounts_are"].as_str(),
            svc["share_of_population"].as_str()
        ),
        ("hosts", "")
    );
}

/// One folder as an incident responder collects it: an sshd log, an old `messages` file, a
/// journald export, an `.evtx`, Winlogbeat documents and a headerless CSV with its profile.
/// `inspect` names each format and every line of each is parsed, ignored or blank — none lost.
#[test]
fn inspect_names_every_format_of_a_mixed_folder_and_reconciles_every_line() {
    let dir = tmp();
    let input = dir.path().join("collected");
    let files: [(&str, String); 5] = [
        (
            "auth.log",
            "Mar  3 10:01:02 web1 sshd[811]: Accepted publickey for alice from 203.0.113.5 port 50022 ssh2\n\
             Mar  3 10:01:05 web1 sshd[812]: Invalid user admin from 198.51.100.9 port 4242\n\
             Mar  3 10:01:06 web1 CRON[900]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)\n\
             <38>1 2025-03-03T10:02:00Z web1 sshd 813 - - Failed password for bob from 198.51.100.9 port 4243 ssh2\n"
                .into(),
        ),
        (
            "messages",
            "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4  user=root\n\
             Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown\n\
             Jun 15 04:06:20 combo syslogd 1.4.1: restart.\n\
             Jun 15 04:26:20 combo -- MARK --\n\
             \n\
             Jun 15 12:12:34 combo su(pam_unix)[21416]: session opened for user cyrus by (uid=0)\n"
                .into(),
        ),
        (
            "journal.json",
            [
                json!({"__REALTIME_TIMESTAMP": "1741000000000000", "_HOSTNAME": "web2", "SYSLOG_IDENTIFIER": "sshd", "SYSLOG_PID": "77", "MESSAGE": "Accepted password for carol from 203.0.113.9 port 40000 ssh2"}),
                json!({"__REALTIME_TIMESTAMP": "1741000001000000", "_HOSTNAME": "web2", "SYSLOG_IDENTIFIER": "systemd", "MESSAGE": "Started Session 4 of user carol."}),
            ]
            .iter()
            .map(|v| format!("{v}\n"))
            .collect(),
        ),
        (
            "winlogbeat.ndjson",
            format!(
                "{}\n",
                json!({"@timestamp": "2025-03-03T09:00:00.000Z", "winlog": {"event_id": 4624, "computer_name": "VPN01",
                    "event_data": {"TargetUserName": "dave", "TargetUserSid": "S-1-5-21-1-2-3-1001", "LogonType": "10", "IpAddress": "198.51.100.20"}}})
            ),
        ),
        (
            "vpn-export.csv",
            "2025-03-01 09:00:00,alice,203.0.113.7,LOGIN,OK\n2025-03-01 09:05:00,bob,10.0.0.8,LOGIN,DENIED\n".into(),
        ),
    ];
    for (name, text) in &files {
        write(&input.join(name), text);
    }
    std::fs::copy(
        repo().join("tests/fixtures/evtx/Security_short_selected.evtx"),
        input.join("Security.evtx"),
    )
    .expect("copy the fixture");
    let profile = dir.path().join("vpn.toml");
    write(
        &profile,
        "name = \"vpn\"\nformat = \"csv\"\nhas_header = false\n[fields]\ntimestamp = \"1\"\nprincipal = \"2\"\nsource_ip = \"3\"\nevent_type = \"4\"\noutcome = \"5\"\n[values.event_type]\n\"LOGIN\" = \"login\"\n[values.outcome]\n\"OK\" = \"success\"\n\"*\" = \"failure\"\n",
    );
    let out = bin()
        .args(["inspect", "--syslog-year", "2025", "--profile"])
        .arg(&profile)
        .arg(&input)
        .output()
        .expect("inspect runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let want = [
        ("auth.log", "authlog", 4),
        ("messages", "authlog", 6),
        ("journal.json", "journald", 2),
        ("winlogbeat.ndjson", "windows", 1),
        ("vpn-export.csv", "profile:vpn", 2),
        ("Security.evtx", "evtx", 7),
    ];
    for (name, format, lines) in want {
        let block = text
            .split(&format!("{}\n", input.join(name).display()))
            .nth(1)
            .unwrap_or_else(|| panic!("{name} not listed: {text}"));
        let stats = block.lines().next().unwrap_or_default();
        let numbers: Vec<u64> = stats
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        assert!(
            stats.contains(&format!("format {format} ·")),
            "{name}: {stats}"
        );
        let [records, parsed, rejected, ignored, blank] = numbers[..] else {
            panic!("{name}: {stats}");
        };
        assert_eq!(records, parsed + rejected + ignored, "{name}: {stats}");
        assert_eq!((rejected, records + blank), (0, lines), "{name}: {stats}");
    }
}

fn xml_event(minute: u32, id: u32, computer: &str, data: &[(&str, &str)]) -> String {
    let (day, h, m) = (1 + minute / 1440, minute / 60 % 24, minute % 60);
    let data: String = data
        .iter()
        .map(|(k, v)| format!("<Data Name='{k}'>{v}</Data>"))
        .collect();
    format!(
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Security-Auditing' Guid='{{54849625-5478-4994-a5ba-3e3b0328c30d}}'/><EventID>{id}</EventID><Version>2</Version><Level>0</Level><Task>12544</Task><TimeCreated SystemTime='2025-03-{day:02}T{h:02}:{m:02}:00.123456700Z'/><EventRecordID>{minute}</EventRecordID><Channel>Security</Channel><Computer>{computer}</Computer><Security/></System><EventData>{data}</EventData></Event>"
    )
}

/// `wevtutil qe Security /f:xml` writes events back to back on one line; `evtx_dump -o xml`
/// pretty-prints each after a `Record N` line and a declaration. Both read alike; an event over
/// the record bound is one reject and reading goes on with the next.
#[test]
fn xml_exports_are_read_event_by_event() {
    let dir = tmp();
    let input = dir.path().join("xml");
    let guesses: String = (0..8)
        .map(|i| {
            xml_event(
                600 + i,
                4625,
                "VPN01",
                &[
                    ("TargetUserName", &format!("guess{i}")),
                    ("Status", "0xc000006d"),
                    ("SubStatus", "0xc0000064"),
                    ("IpAddress", "203.0.113.44"),
                    ("LogonType", "3"),
                ],
            )
        })
        .collect();
    let huge = xml_event(700, 4624, "FS01", &[("TargetUserName", &"x".repeat(5000))]);
    let ok = xml_event(
        701,
        4624,
        "FS01",
        &[
            ("TargetUserName", "r&amp;d-admin"),
            ("TargetUserSid", "S-1-5-21-1-2-3-1001"),
            ("LogonType", "10"),
            ("IpAddress", "198.51.100.3"),
        ],
    );
    write(&input.join("wevtutil.xml"), &format!("{guesses}{huge}{ok}"));
    let pretty = xml_event(
        800,
        4624,
        "FS02",
        &[
            ("TargetUserName", "carol"),
            ("TargetUserSid", "S-1-5-21-1-2-3-1002"),
            ("LogonType", "3"),
            ("IpAddress", "-"),
        ],
    )
    .replace("><", ">\n  <");
    write(
        &input.join("dump.xml"),
        &format!(
            "Record 1\n<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{pretty}\nRecord 2\n<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{pretty}\n"
        ),
    );
    let out = dir.path().join("out");
    let rows = analyze_ok(
        &out,
        &[input.to_str().unwrap(), "--max-record-bytes", "4096"],
    );
    assert!(
        reasons_of(&rows, "203.0.113.44").contains("username_enumeration"),
        "{rows:#?}"
    );
    let summary = summary_md(&out);
    assert!(
        summary.contains("wevtutil.xml | windows-xml | 10 | 9 | 1 | 0 |"),
        "{summary}"
    );
    assert!(
        summary.contains("dump.xml | windows-xml | 2 | 2 | 0 | 0 |"),
        "{summary}"
    );
    let rejects = std::fs::read_to_string(out.join("rejects.csv")).expect("rejects");
    assert!(rejects.contains("wevtutil.xml,1,"), "{rejects}");
    let text = inspect(&input);
    assert!(text.contains("format windows-xml"), "{text}");
}
