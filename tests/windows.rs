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
