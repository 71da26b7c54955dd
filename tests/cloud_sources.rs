use serde_json::json;

use crate::util::*;

/// Microsoft Entra ID as Graph exports it: sign-ins as JSON lines and as a page of Graph's own
/// response (`{"@odata.context", "value": [...]}`), directory audits as a JSON array, and a Log
/// Analytics `SigninLogs` export with its own key names. An account disabled by
/// an administrator that signs in days later is used after departure (no roster given: the audit
/// log is the departure), and an address trying names the directory does not have (AADSTS50034)
/// is username enumeration.
#[test]
fn entra_id_sign_ins_and_audits_find_a_disabled_account_signing_in() {
    let dir = tmp();
    let input = dir.path().join("entra");
    let sign_in = |when: &str, upn: &str, ip: &str, code: u32| {
        json!({
            "id": format!("{when}-{upn}"), "createdDateTime": when, "userDisplayName": upn,
            "userPrincipalName": upn, "userId": "6e1b2c4a-0000-0000-0000-000000000000",
            "appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064", "appDisplayName": "Graph Explorer",
            "ipAddress": ip, "clientAppUsed": "Browser", "isInteractive": true,
            "resourceDisplayName": "Microsoft Graph", "resourceId": "00000003-0000-0000-c000-000000000000",
            "status": {"errorCode": code, "failureReason": if code == 0 { "Other." } else { "Invalid username or password." }, "additionalDetails": null},
            "location": {"city": "Redmond", "countryOrRegion": "US"}
        })
        .to_string()
    };
    let mut lines = Vec::new();
    for day in 1..=20 {
        for u in ["alice", "bob", "mallory"] {
            if u == "mallory" && day > 9 && day != 14 {
                continue;
            }
            let when = format!("2025-03-{day:02}T09:00:00Z");
            lines.push(sign_in(
                &when,
                &format!("{u}@contoso.com"),
                "198.51.100.10",
                0,
            ));
        }
    }
    write(&input.join("signins.jsonl"), &(lines.join("\n") + "\n"));
    // A page of Graph's own response, saved as it came: the records under `value`.
    let guesses: Vec<serde_json::Value> = (0..8)
        .map(|i| {
            let when = format!("2025-03-05T02:0{i}:00Z");
            let line = sign_in(
                &when,
                &format!("guess{i}@contoso.com"),
                "203.0.113.77",
                50034,
            );
            serde_json::from_str(&line).expect("sign-in")
        })
        .collect();
    write(
        &input.join("signins-page2.json"),
        &json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",
            "value": guesses,
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/auditLogs/signIns?$skiptoken=abc"
        })
        .to_string(),
    );
    let audit = |when: &str, activity: &str, target: &str, result: &str| {
        json!({
            "id": format!("Directory_{when}"), "category": "UserManagement", "result": result,
            "resultReason": "", "activityDisplayName": activity, "activityDateTime": when,
            "loggedByService": "Core Directory", "operationType": "Update",
            "initiatedBy": {"app": null, "user": {"id": "a1", "displayName": null, "userPrincipalName": "admin@contoso.com", "ipAddress": null}},
            "targetResources": [{"id": "t1", "displayName": null, "type": "User", "userPrincipalName": target, "modifiedProperties": []}],
            "additionalDetails": []
        })
    };
    write(
        &input.join("directoryAudits.json"),
        &json!([
            audit(
                "2025-03-09T16:00:00Z",
                "Disable account",
                "mallory@contoso.com",
                "success"
            ),
            audit(
                "2025-03-09T16:05:00Z",
                "Disable account",
                "bob@contoso.com",
                "failure"
            ),
            audit(
                "2025-03-09T16:06:00Z",
                "Update user",
                "alice@contoso.com",
                "success"
            ),
        ])
        .to_string(),
    );
    // The same sign-ins as Log Analytics writes them.
    write(
        &input.join("la/SigninLogs.jsonl"),
        &(json!({"TimeGenerated": "2025-03-02T10:00:00Z", "UserPrincipalName": "alice@contoso.com", "ResultType": "0", "IPAddress": "198.51.100.10", "AppDisplayName": "Office 365", "ResourceDisplayName": "Office 365 Exchange Online"}).to_string() + "\n"),
    );
    let out = dir.path().join("out");
    let rows = analyze_ok(&out, &[input.to_str().unwrap()]);
    let mallory = reasons_of(&rows, "mallory@contoso.com");
    assert!(
        mallory.contains("principal_used_after_departure"),
        "{rows:#?}"
    );
    assert!(mallory.contains("2025-03-14"), "{mallory}");
    assert!(
        rank_of(&rows, "bob@contoso.com").is_none(),
        "a failed disable is no departure: {rows:#?}"
    );
    assert!(
        reasons_of(&rows, "203.0.113.77").contains("username_enumeration"),
        "{rows:#?}"
    );
    let summary = summary_md(&out);
    for format in [
        "| entra-signin | 50 |",
        "| entra-signin | 8 |",
        "| entra-audit | 3 |",
        "| entra-signin | 1 |",
    ] {
        assert!(summary.contains(format), "{format}: {summary}");
    }
}

/// A gateway's JSON access log with the bearer token logged (nginx) and one with the JWT
/// authorizer's claims (API Gateway): the signing key, token and subject come from the token,
/// the account from the request path. A token under an old key reading 400 accounts one after
/// another is found with its key; the token's signature appears in no output, not even the
/// quarantined copy of a broken line that carried it.
#[test]
fn gateway_logs_yield_key_token_and_subject_from_the_jwt() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    const SIGNATURE: &str = "U2lnbmF0dXJlT2ZUaGVGb3JnZWRUb2tlbg";
    let jwt = |kid: &str, sub: &str, jti: &str| {
        format!(
            "{}.{}.{SIGNATURE}",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#)),
            URL_SAFE_NO_PAD.encode(format!(
                r#"{{"sub":"{sub}","jti":"{jti}","iat":1740800000,"exp":1740803600}}"#
            )),
        )
    };
    let dir = tmp();
    let input = dir.path().join("gw");
    let mut lines = Vec::new();
    for day in 1..=10 {
        for c in 0..40 {
            // Customers come in no particular order of their account numbers.
            let account = 100_000 + (c * 17 + day * 7) % 40;
            lines.push(json!({
                "time_iso8601": format!("2025-03-{day:02}T10:{c:02}:00+00:00"),
                "remote_addr": format!("198.51.100.{c}"),
                "request": format!("GET /api/v2/members/{account}/addresses HTTP/1.1"),
                "status": "200", "body_bytes_sent": "512", "http_user_agent": "shop-app/5.1",
                "http_authorization": format!("Bearer {}", jwt("signing-2025", &format!("{account}"), &format!("t-{day}-{c}"))),
            }).to_string());
        }
    }
    for i in 0..400u32 {
        lines.push(json!({
            "time_iso8601": format!("2025-03-11T02:{:02}:{:02}+00:00", i / 60, i % 60),
            "remote_addr": "203.0.113.200",
            "request": format!("GET /api/v2/members/{}/addresses HTTP/1.1", 200_000 + i),
            "status": "200", "body_bytes_sent": "512", "http_user_agent": "python-requests/2.31",
            "http_authorization": format!("Bearer {}", jwt("signing-2023", "100001", &format!("f-{i}"))),
        }).to_string());
    }
    lines.push(format!(
        r#"{{"http_authorization": "Bearer {}", "time_iso8601": "not a time", "remote_addr": "203.0.113.200", "request": "GET /x", "status": "200"}}"#,
        jwt("signing-2023", "100001", "f-broken")
    ));
    write(&input.join("nginx/access.json"), &(lines.join("\n") + "\n"));
    write(
        &input.join("apigw/access.jsonl"),
        &(json!({"requestId": "r-1", "ip": "198.51.100.3", "requestTime": "01/Mar/2025:09:00:00 +0000",
            "httpMethod": "GET", "resourcePath": "/members/{id}", "path": "/prod/members/100003", "status": "200",
            "protocol": "HTTP/1.1", "responseLength": "300",
            "authorizer": {"claims": {"sub": "100003", "jti": "t-apigw-1"}}}).to_string() + "\n"),
    );
    let out = dir.path().join("out");
    let rows = analyze_ok(&out, &[input.to_str().unwrap()]);
    assert!(
        rows.iter()
            .take(3)
            .any(|r| r["entity_id"] == "signing-2023"),
        "{rows:#?}"
    );
    assert!(rank_of(&rows, "signing-2025").is_none(), "{rows:#?}");
    let summary = summary_md(&out);
    assert!(
        summary.contains("GET /api/v2/members/{id}/addresses (4"),
        "endpoints, not URLs: {summary}"
    );
    let text = inspect(&input);
    assert!(text.contains("format gateway"), "{text}");
    assert!(
        text.contains("principal 100% · credential_id 100% · token_id 100% · source_ip 100%"),
        "{text}"
    );
    let rejects = std::fs::read_to_string(out.join("rejects.csv")).expect("rejects");
    assert!(rejects.contains("<signature removed>"), "{rejects}");
    for entry in std::fs::read_dir(&out).expect("report") {
        let path = entry.expect("entry").path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            assert!(
                !text.contains(SIGNATURE),
                "{} leaks the signature",
                path.display()
            );
        }
    }
}

/// OCSF as a data lake holds it (Security Lake's `region=…/accountId=…/eventDay=…` folders, JSON
/// lines): Authentication (3002), Account Change (3001) and API Activity (6003). An account
/// disabled on day 10 whose user keeps reading customer records through the API ranks first;
/// its departure comes from the lake's own Account Change events.
#[test]
fn ocsf_events_from_a_lake_rank_the_disabled_reader_first() {
    let dir = tmp();
    let input = dir.path().join("lake");
    let ms = |day: u32, minute: u32| {
        1_740_787_200_000u64 + u64::from(day) * 86_400_000 + u64::from(minute) * 60_000
    };
    let meta = json!({"version": "1.1.0", "product": {"name": "Identity Provider", "vendor_name": "Example"}});
    let mut lines: Vec<(u32, String)> = Vec::new();
    for day in 0..20 {
        for (u, user) in ["ann", "ben", "cho", "dee", "eve"].iter().enumerate() {
            if *user == "eve" && day >= 10 {
                continue;
            }
            lines.push((day, json!({"class_uid": 3002, "category_uid": 3, "activity_id": 1, "time": ms(day, 480 + u as u32),
                "metadata": meta, "user": {"name": user, "uid": format!("u-{user}")}, "status_id": 1,
                "src_endpoint": {"ip": format!("10.0.0.{}", u + 10)}, "dst_endpoint": {"hostname": "portal"}}).to_string()));
            for k in 0..5u32 {
                let customer = (u as u32 * 7 + k + day) % 60;
                lines.push((day, json!({"class_uid": 6003, "category_uid": 6, "activity_id": 2, "time": ms(day, 500 + k),
                    "metadata": meta, "actor": {"user": {"name": user, "uid": format!("u-{user}")}},
                    "api": {"operation": "GetCustomer"}, "src_endpoint": {"ip": format!("10.0.0.{}", u + 10)},
                    "resources": [{"uid": format!("customer-{customer:05}"), "type": "Customer"}], "status_id": 1}).to_string()));
            }
        }
    }
    lines.push((9, json!({"class_uid": 3001, "category_uid": 3, "activity_id": 5, "time": ms(9, 1000), "metadata": meta,
        "user": {"name": "eve", "uid": "u-eve"}, "actor": {"user": {"name": "admin"}}, "status_id": 1}).to_string()));
    for day in 12..20 {
        for k in 0..40u32 {
            lines.push((day, json!({"class_uid": 6003, "category_uid": 6, "activity_id": 2, "time": ms(day, 120 + k),
                "metadata": meta, "actor": {"user": {"name": "eve", "uid": "u-eve"}},
                "api": {"operation": "GetCustomer"}, "src_endpoint": {"ip": "203.0.113.99"},
                "resources": [{"uid": format!("customer-{:05}", 100 + (day - 12) * 40 + k), "type": "Customer"}], "status_id": 1}).to_string()));
        }
    }
    for day in 0..20 {
        let text: String = lines
            .iter()
            .filter(|(d, _)| *d == day)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        write(
            &input.join(format!(
                "region=us-east-1/accountId=123456789012/eventDay=202503{:02}/events.json",
                day + 1
            )),
            &text,
        );
    }
    let out = dir.path().join("out");
    let rows = analyze_ok(&out, &[input.to_str().unwrap()]);
    assert_eq!(rows[0]["entity_id"], "eve", "{rows:#?}");
    assert!(
        reasons_of(&rows, "eve").contains("principal_used_after_departure"),
        "{rows:#?}"
    );
    let text = inspect(&input);
    assert!(text.contains("format ocsf"), "{text}");
}

/// A lake of many small Parquet files (a day's partitions), read side by side on small stacks:
/// a file read that blocked on polars' own pool let its rayon worker steal the next file, one
/// stack frame deeper each time, until the stack overflowed.
#[test]
fn many_small_parquet_files_are_read_on_small_stacks() {
    use polars::prelude::*;
    use polars_io::parquet::write::ParquetWriter;
    let dir = tmp();
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).expect("dir");
    for f in 0..400i64 {
        let stamps = Series::new(
            "timestamp".into(),
            (0..3)
                .map(|i| 1_740_823_200_000 + f * 60_000 + i)
                .collect::<Vec<i64>>(),
        )
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .expect("timestamps");
        let mut df = DataFrame::new_infer_height(vec![
            stamps.into(),
            Series::new("event_type".into(), vec!["login"; 3]).into(),
            Series::new("principal".into(), vec![format!("u{}", f % 7); 3]).into(),
            Series::new("success".into(), vec![true; 3]).into(),
        ])
        .expect("frame");
        let file = std::fs::File::create(lake.join(format!("part-{f:04}.parquet"))).expect("file");
        ParquetWriter::new(file)
            .finish(&mut df)
            .expect("write parquet");
    }
    let out = dir.path().join("out");
    let o = bin()
        .env("RUST_MIN_STACK", "131072")
        .arg("analyze")
        .arg(&lake)
        .args(["--quiet", "--out"])
        .arg(&out)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(summary_md(&out).contains("1200"), "{}", summary_md(&out));
}

/// Parquet as a lake holds it: OCSF Authentication and Account Change rows with nested `user`,
/// `src_endpoint` and `metadata` structs under Security Lake's partition folders, and a canonical
/// table with a real timestamp column. Read column-wise, mapped like their JSON forms: the
/// disabled account that signs in later is found, and every row reconciles.
#[test]
fn parquet_ocsf_and_canonical_tables_are_read() {
    use polars::prelude::*;
    use polars_io::parquet::write::{ParquetCompression, ParquetWriter};
    fn strs(name: &str, v: Vec<String>) -> Series {
        Series::new(name.into(), v)
    }
    fn structure(name: &str, fields: &[Series]) -> Series {
        let n = fields[0].len();
        StructChunked::from_series(name.into(), n, fields.iter())
            .expect("struct")
            .into_series()
    }
    fn save(path: &std::path::Path, df: &mut DataFrame) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        let file = std::fs::File::create(path).expect("create");
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)
            .expect("write parquet");
    }
    let dir = tmp();
    let lake = dir
        .path()
        .join("lake/region=us-east-1/accountId=123456789012");
    // Five users sign in daily for 20 days; eve is disabled on day 10 and signs in on day 15.
    let (mut time, mut class, mut activity, mut status, mut user, mut ip) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for day in 0..20i64 {
        for (u, name) in ["ann", "ben", "cho", "dee", "eve"].iter().enumerate() {
            if *name == "eve" && day >= 10 && day != 15 {
                continue;
            }
            time.push(1_740_787_200_000 + day * 86_400_000 + u as i64 * 60_000);
            class.push(3002i32);
            activity.push(1i32);
            status.push(1i32);
            user.push(name.to_string());
            ip.push(format!("10.0.0.{}", u + 10));
        }
    }
    time.push(1_740_787_200_000 + 9 * 86_400_000 + 3_600_000);
    class.push(3001);
    activity.push(5);
    status.push(1);
    user.push("eve".into());
    ip.push("10.0.0.1".into());
    let n = time.len();
    let mut df = DataFrame::new_infer_height(vec![
        Series::new("time".into(), time).into(),
        Series::new("class_uid".into(), class).into(),
        Series::new("activity_id".into(), activity).into(),
        Series::new("status_id".into(), status).into(),
        structure("user", &[strs("name", user)]).into(),
        structure("src_endpoint", &[strs("ip", ip)]).into(),
        structure("metadata", &[strs("version", vec!["1.1.0".into(); n])]).into(),
        Series::new("unused_wide_column".into(), vec!["x".repeat(50); n]).into(),
    ])
    .expect("frame");
    save(&lake.join("eventDay=20250301/part-0.zstd.parquet"), &mut df);
    let canonical = dir.path().join("lake/canonical/events.parquet");
    // A typed timestamp column (zone-less: UTC, as Parquet defines it).
    let stamps = Series::new(
        "timestamp".into(),
        vec![1_740_823_200_000i64, 1_740_909_600_000],
    )
    .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
    .expect("timestamps");
    let mut flat = DataFrame::new_infer_height(vec![
        stamps.into(),
        Series::new("event_type".into(), vec!["login", "login"]).into(),
        Series::new("principal".into(), vec!["ann", "ann"]).into(),
        Series::new("success".into(), vec![true, true]).into(),
    ])
    .expect("frame");
    save(&canonical, &mut flat);
    let out = dir.path().join("out");
    let input = dir.path().join("lake");
    let rows = analyze_ok(&out, &[input.to_str().unwrap()]);
    assert_eq!(rows[0]["entity_id"], "eve", "{rows:#?}");
    assert!(
        reasons_of(&rows, "eve").contains("principal_used_after_departure"),
        "{rows:#?}"
    );
    let summary = summary_md(&out);
    assert!(
        summary.contains(&format!("| parquet:ocsf | {n} | {n} | 0 | 0 |")),
        "{summary}"
    );
    assert!(summary.contains("| parquet | 2 | 2 | 0 | 0 |"), "{summary}");
    assert!(
        summary.contains("2025-03-01T10:00:00+00:00 → 2025-03-02T10:00:00+00:00"),
        "{summary}"
    );
}
