//! Micro-benchmarks of the hot paths (divan): timestamp parsing, reading each input format,
//! each detector on a fixed in-memory frame, and chart rendering; and each pass over the frame
//! written by hand in place of polars against the polars query it replaced (`usage_of_flagged`,
//! `related_counts`, `daily_series`), whose module comments quote these figures.
//! Run: `cargo bench --bench hot_paths` (numbers go in docs/performance.md, never in tests).

use std::path::PathBuf;
use std::sync::OnceLock;

use audithound::context::{self, Context};
use audithound::detect::{self, DetectInput, DetectOptions};
use audithound::ingest::{self, Discovered, ReadOptions};
use audithound::normalize::TimeParser;
use polars::prelude::DataFrame;

fn main() {
    divan::main();
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    events: DataFrame,
    tokens: std::sync::Arc<audithound::normalize::Tokens>,
    context: Context,
    files: Vec<String>,
}

fn time() -> TimeParser {
    TimeParser::new(chrono_tz::UTC)
}

/// A 30-day, 2,000-customer export (~100k events), plain files, made once per run.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("export");
        audithound::generate::run(&audithound::generate::Config {
            out: root.clone(),
            seed: 1,
            days: 30,
            customers: 2000,
            employees: 40,
            compress: false,
            format: audithound::generate::EventFormat::Mixed,
            variant: Default::default(),
        })
        .expect("generate");
        let found = ingest::discover(std::slice::from_ref(&root)).expect("discover");
        let ingested = ingest::read_events(&found, &options(), false).expect("ingest");
        let context = Context {
            roster: context::load_roster(&root.join("roster.csv"), &time()).expect("roster"),
            credentials: context::load_credentials(&root.join("credentials.csv"), &time())
                .expect("credentials"),
            roster_path: Some(root.join("roster.csv")),
            credentials_path: Some(root.join("credentials.csv")),
        };
        let files = found
            .events
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Fixture {
            _dir: dir,
            root,
            events: ingested.events,
            tokens: ingested.tokens,
            context,
            files,
        }
    })
}

#[divan::bench(args = ["2025-03-01T12:00:00+09:00", "2025-03-01 12:00:00", "1740830400123"])]
fn parse_timestamp(s: &str) -> i64 {
    time().parse(divan::black_box(s)).unwrap_or_default()
}

fn options() -> ReadOptions {
    ReadOptions::new(time(), None, None, Some(2025)).expect("built-in profiles")
}

fn read_one(path: PathBuf) -> usize {
    let found = Discovered {
        events: vec![path],
        ..Discovered::default()
    };
    ingest::read_events(&found, &options(), false)
        .map(|i| i.events.height())
        .unwrap_or(0)
}

#[divan::bench]
fn read_csv_gateway(b: divan::Bencher) {
    let path = fixture().root.join("gateway/access-000.csv");
    b.counter(divan::counter::BytesCount::new(
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
    ))
    .bench(|| read_one(path.clone()));
}

#[divan::bench]
fn read_jsonl_issuance(b: divan::Bencher) {
    let path = fixture().root.join("auth/token-issuance.jsonl");
    b.counter(divan::counter::BytesCount::new(
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
    ))
    .bench(|| read_one(path.clone()));
}

/// 20,000 records of each vendor format, written once into one folder: CloudTrail as delivered
/// (`cloudtrail.json`, one `{"Records": [...]}` file), Okta System Log as JSON lines
/// (`okta.jsonl`), a Linux auth log (`auth.log`), an old pam_unix `messages` file, rsyslog's
/// RFC 5424 form (`rfc5424.log`) and Windows logons as `evtx_dump` JSON (`security.jsonl`).
fn vendor_files() -> &'static tempfile::TempDir {
    static F: OnceLock<tempfile::TempDir> = OnceLock::new();
    F.get_or_init(|| {
        use serde_json::json;
        let dir = tempfile::tempdir().expect("temp dir");
        let n = 20_000;
        let records: Vec<_> = (0..n)
            .map(|i| {
                json!({
                    "eventVersion": "1.08",
                    "userIdentity": {"type": "IAMUser", "principalId": "AIDA000",
                        "arn": format!("arn:aws:iam::123456789012:user/u{}", i % 50),
                        "accountId": "123456789012", "accessKeyId": format!("AKIA{:012}", i % 80),
                        "userName": format!("u{}", i % 50)},
                    "eventTime": format!("2025-03-{:02}T{:02}:{:02}:00Z", 1 + i % 28, i % 24, i % 60),
                    "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "us-east-1",
                    "sourceIPAddress": format!("198.51.100.{}", i % 250), "userAgent": "aws-cli/2.15.0",
                    "requestParameters": {"bucketName": "customers", "key": format!("C{i:08}")},
                    "responseElements": null, "eventType": "AwsApiCall"
                })
            })
            .collect();
        let okta: Vec<String> = (0..n)
            .map(|i| {
                json!({
                    "uuid": format!("e{i}"), "published": format!("2025-03-{:02}T{:02}:00:00.000Z", 1 + i % 28, i % 24),
                    "eventType": "user.session.start", "version": "0", "severity": "INFO",
                    "actor": {"id": format!("00u{}", i % 300), "type": "User",
                              "alternateId": format!("user{}@example.com", i % 300)},
                    "client": {"ipAddress": format!("203.0.113.{}", i % 250),
                               "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
                    "outcome": {"result": if i % 20 == 0 { "FAILURE" } else { "SUCCESS" }},
                    "target": [], "authenticationContext": {"credentialType": "PASSWORD"}
                })
                .to_string()
            })
            .collect();
        let messages: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "Jun {:2} {:02}:{:02}:01 combo sshd(pam_unix)[{i}]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=61-220-157-{}.hinet-ip.hinet.net  user=u{}",
                    1 + i % 28, i % 24, i % 60, i % 250, i % 40
                )
            })
            .collect();
        let rfc5424: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "<38>1 2025-03-{:02}T{:02}:{:02}:07.123456+00:00 web{} sshd {i} - - Failed password for u{} from 192.0.2.{} port 5{:04} ssh2",
                    1 + i % 28, i % 24, i % 60, i % 8, i % 40, i % 250, i % 10_000
                )
            })
            .collect();
        let security: Vec<String> = (0..n)
            .map(|i| {
                json!({"Event": {"System": {"EventID": if i % 10 == 0 { 4625 } else { 4624 },
                    "TimeCreated": {"#attributes": {"SystemTime": format!("2025-03-{:02}T{:02}:{:02}:07.1234567Z", 1 + i % 28, i % 24, i % 60)}},
                    "Channel": "Security", "Computer": format!("WS{:03}", i % 300)},
                    "EventData": {"TargetUserSid": "S-1-5-21-1-2-3-1001", "TargetUserName": format!("u{}", i % 40),
                        "TargetDomainName": "CORP", "LogonType": 3, "Status": "0xc000006d", "SubStatus": "0xc000006a",
                        "IpAddress": format!("10.0.{}.{}", i % 4, i % 250), "IpPort": "50123"}}})
                .to_string()
            })
            .collect();
        let auth: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "Mar {:2} {:02}:{:02}:07 web{} sshd[{i}]: Accepted publickey for u{} from 192.0.2.{} port 5{:04} ssh2",
                    1 + i % 28, i % 24, i % 60, i % 8, i % 40, i % 250, i % 10_000
                )
            })
            .collect();
        for (name, text) in [
            ("cloudtrail.json", json!({ "Records": records }).to_string()),
            ("okta.jsonl", okta.join("\n")),
            ("auth.log", auth.join("\n")),
            ("messages", messages.join("\n")),
            ("rfc5424.log", rfc5424.join("\n")),
            ("security.jsonl", security.join("\n")),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write vendor fixture");
        }
        dir
    })
}

#[divan::bench(args = ["cloudtrail.json", "okta.jsonl", "auth.log", "messages", "rfc5424.log", "security.jsonl"])]
fn read_vendor_format(b: divan::Bencher, name: &str) {
    let path = vendor_files().path().join(name);
    // Every record must parse, or this would time the reject path instead of the reader.
    assert_eq!(
        read_one(path.clone()),
        20_000,
        "{name} fixture did not parse"
    );
    b.counter(divan::counter::BytesCount::new(
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
    ))
    .bench(|| read_one(path.clone()));
}

/// 20,000 OCSF Authentication rows (nested `user`, `src_endpoint`, `dst_endpoint`, `metadata`
/// structs) and the same number of canonical rows, as zstd Parquet, written once.
fn parquet_files() -> &'static tempfile::TempDir {
    static F: OnceLock<tempfile::TempDir> = OnceLock::new();
    F.get_or_init(|| {
        use polars::prelude::*;
        use polars_io::parquet::write::{ParquetCompression, ParquetWriter};
        let dir = tempfile::tempdir().expect("temp dir");
        let n = 20_000usize;
        let strs = |name: &str, f: &dyn Fn(usize) -> String| {
            Series::new(name.into(), (0..n).map(f).collect::<Vec<_>>())
        };
        let structure = |name: &str, fields: Vec<Series>| {
            StructChunked::from_series(name.into(), n, fields.iter())
                .expect("struct")
                .into_series()
                .into()
        };
        let time: Vec<i64> = (0..n as i64)
            .map(|i| 1_740_787_200_000 + i * 60_000)
            .collect();
        let mut ocsf = DataFrame::new_infer_height(vec![
            Series::new("time".into(), time.clone()).into(),
            Series::new("class_uid".into(), vec![3002i32; n]).into(),
            Series::new("activity_id".into(), vec![1i32; n]).into(),
            Series::new(
                "status_id".into(),
                (0..n)
                    .map(|i| if i % 20 == 0 { 2i32 } else { 1 })
                    .collect::<Vec<_>>(),
            )
            .into(),
            structure("user", vec![strs("name", &|i| format!("user{}", i % 300))]),
            structure(
                "src_endpoint",
                vec![strs("ip", &|i| format!("203.0.113.{}", i % 250))],
            ),
            structure(
                "dst_endpoint",
                vec![strs("hostname", &|i| format!("host{}", i % 40))],
            ),
            structure("metadata", vec![strs("version", &|_| "1.1.0".to_string())]),
        ])
        .expect("frame");
        let mut canonical = DataFrame::new_infer_height(vec![
            Series::new("timestamp".into(), time).into(),
            strs("event_type", &|_| "access".to_string()).into(),
            strs("principal", &|i| format!("c{}", i % 2000)).into(),
            strs("token_id", &|i| format!("t{i}")).into(),
            strs("source_ip", &|i| format!("198.51.100.{}", i % 250)).into(),
            strs("target_account", &|i| format!("{}", i % 2000)).into(),
        ])
        .expect("frame");
        for (name, df) in [
            ("ocsf.parquet", &mut ocsf),
            ("canonical.parquet", &mut canonical),
        ] {
            let file = std::fs::File::create(dir.path().join(name)).expect("create");
            ParquetWriter::new(file)
                .with_compression(ParquetCompression::Zstd(None))
                .finish(df)
                .expect("write parquet");
        }
        dir
    })
}

/// Parquet ingest: OCSF rows through the OCSF profile, canonical rows column-wise.
#[divan::bench(args = ["ocsf.parquet", "canonical.parquet"])]
fn read_parquet(b: divan::Bencher, name: &str) {
    let path = parquet_files().path().join(name);
    assert_eq!(read_one(path.clone()), 20_000, "{name} did not parse");
    b.counter(divan::counter::ItemsCount::new(20_000usize))
        .bench(|| read_one(path.clone()));
}

/// A real Security channel `.evtx` (the `evtx` crate's 2.1 MB sample, `benches/fixtures/NOTICE.md`):
/// every one of its 2,261 records is decoded; 174 are logins, the rest are ignored.
#[divan::bench]
fn read_evtx(b: divan::Bencher) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/fixtures/security.evtx");
    assert_eq!(read_one(path.clone()), 174, "the EVTX sample did not parse");
    b.counter(divan::counter::BytesCount::new(
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
    ))
    .bench(|| read_one(path.clone()));
}

#[divan::bench(args = ["offboarding", "forged_tokens", "key_lifecycle", "enumeration", "auth_attacks"])]
fn detector(b: divan::Bencher, name: &str) {
    let f = fixture();
    let options = DetectOptions::default();
    let time = time();
    let all = detect::all();
    let Some(d) = all.iter().find(|d| d.name() == name) else {
        return;
    };
    // A fresh input each time: it caches the sorted access rows, whose cost belongs to the run.
    b.with_inputs(|| DetectInput::new(&f.events, &f.context, &options, &time, &f.files, &f.tokens))
        .bench_refs(|input| d.detect(input).expect("detect").findings.len());
}

#[divan::bench(sample_count = 10)]
fn full_report_with_charts(b: divan::Bencher) {
    let f = fixture();
    b.bench(|| {
        let out = tempfile::tempdir().expect("temp dir");
        let plan = audithound::analyze::Plan {
            inputs: vec![f.root.clone()],
            roster: None,
            credentials: None,
            allowlist: None,
            out: out.path().join("r"),
            force: false,
            time: time(),
            from: None,
            to: None,
            options: DetectOptions::default(),
            min_level: audithound::rank::Severity::Informational,
            formats: audithound::report::Formats::default(),
            progress: false,
            timings: false,
            timings_per_detector: false,
            read: audithound::ingest::ReadPlan {
                syslog_year: Some(2025),
                max_record_bytes: audithound::ingest::lines::DEFAULT_MAX_RECORD_BYTES,
                ..Default::default()
            },
            keep_going: false,
            state: None,
            cluster: None,
            state_group_bytes: audithound::state::GROUP_BYTES,
            retain_days: None,
            spill_from: audithound::normalize::cold::SPILL_FROM,
            records_on_disk_from: audithound::reduce::ON_DISK_FROM,
            two_byte_keys_up_to: audithound::frame::keys::MAX_KEYS,
            one_byte_codes_up_to: audithound::frame::keys::MAX_ONE_BYTE,
        };
        audithound::analyze::run(&plan)
            .map(|o| o.ranked.len())
            .unwrap_or(0)
    });
}

/// A chunk of token codes as a night's mixed file holds them (a third of the rows carry none).
fn token_chunk() -> &'static polars::prelude::UInt32Chunked {
    static CHUNK: OnceLock<polars::prelude::UInt32Chunked> = OnceLock::new();
    CHUNK.get_or_init(|| {
        (0..267_000u32)
            .map(|i| (i % 3 != 0).then_some(i.wrapping_mul(2_654_435_761) % 1_800_000))
            .collect()
    })
}

/// The highest token code of a chunk: `Codes::highest`, folded a bitmap word at a time, against
/// the row-by-row reading it replaced (`docs/performance.md`, fifty-first session).
#[divan::bench(args = ["folded", "row by row"])]
fn highest_token_code(b: divan::Bencher, how: &str) {
    use audithound::frame::Codes;
    let array = token_chunk().downcast_iter().next().expect("one chunk");
    let codes = Codes::Wide(array);
    b.bench(|| match how {
        "folded" => codes.highest(),
        _ => (0..codes.len())
            .map(|i| codes.at(i))
            .filter(|&c| c != u32::MAX)
            .max(),
    });
}

/// Entities as ranking shows them: the five busiest of each kind (a network by its addresses).
fn flagged() -> &'static Vec<audithound::detect::Entity> {
    use audithound::detect::{Entity, EntityKind};
    static FLAGGED: OnceLock<Vec<Entity>> = OnceLock::new();
    FLAGGED.get_or_init(|| {
        let events = &fixture().events;
        let busiest = |column: &str, of: fn(&str) -> Option<String>| {
            let mut counts = std::collections::BTreeMap::<String, usize>::new();
            for name in audithound::frame::strs(events, column).expect("names") {
                if let Some(name) = of(&name).filter(|n| !n.is_empty()) {
                    *counts.entry(name).or_default() += 1;
                }
            }
            let mut by_count: Vec<(String, usize)> = counts.into_iter().collect();
            by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            by_count
                .into_iter()
                .take(5)
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
        };
        let mut all = Vec::new();
        for kind in [
            EntityKind::Credential,
            EntityKind::Principal,
            EntityKind::SourceIp,
        ] {
            let names = busiest(kind.column(), |n| Some(n.to_string()));
            all.extend(names.into_iter().map(|n| Entity::new(kind, n)));
        }
        let networks = busiest("source_ip", audithound::normalize::columns::network_of);
        all.extend(
            networks
                .into_iter()
                .map(|n| Entity::new(EntityKind::Network, n)),
        );
        all
    })
}

/// The endpoints and clients of the shown entities (`detect::usage`): one pass over the frame's
/// chunks against the polars filter and group-bys it replaced.
#[divan::bench(args = ["one pass", "polars"])]
fn usage_of_flagged(b: divan::Bencher, how: &str) {
    use audithound::detect::usage;
    let (events, entities) = (&fixture().events, flagged());
    let cold = &audithound::normalize::cold::IN_FRAME;
    b.bench(|| match how {
        "one pass" => usage::usage(events, cold, entities).expect("usage").len(),
        _ => usage::usage_by_polars(events, entities)
            .expect("polars")
            .len(),
    });
}

/// Enumeration's related entities of the shown ones (`detect::reach::counts_with_each`): the
/// four kinds' questions in one pass over the frame's chunks against a polars filter and
/// group-by per question, which it replaced.
#[divan::bench(args = ["one pass", "polars"])]
fn related_counts(b: divan::Bencher, how: &str) {
    use audithound::detect::{EntityKind, reach};
    let events = &fixture().events;
    let of = |kind: EntityKind| -> std::collections::BTreeSet<String> {
        (flagged().iter().filter(|e| e.kind == kind))
            .map(|e| e.id.clone())
            .collect()
    };
    let kinds = [
        (EntityKind::Credential, "source_ip"),
        (EntityKind::Principal, "source_ip"),
        (EntityKind::SourceIp, "principal"),
        (EntityKind::Network, "source_ip"),
    ];
    let ids: Vec<_> = kinds.iter().map(|(kind, _)| of(*kind)).collect();
    let questions: Vec<(&str, &std::collections::BTreeSet<String>, &str)> = (kinds.iter())
        .zip(&ids)
        .map(|((kind, other), ids)| (kind.column(), ids, *other))
        .collect();
    let cold = &audithound::normalize::cold::IN_FRAME;
    b.bench(|| match how {
        "one pass" => reach::counts_with_each((events, cold, None), &questions)
            .expect("counts")
            .len(),
        _ => (questions.iter())
            .map(|(key, ids, other)| reach::counts_with_by_polars(events, key, ids, other))
            .map(|counts| counts.expect("polars").len())
            .sum(),
    });
}

/// The charts' daily activity and heat map (`report::series::daily`) of the busiest entity of
/// each kind and another principal: one pass over the frame's chunks against the polars
/// group-bys per entity it replaced.
#[divan::bench(args = ["one pass", "polars"])]
fn daily_series(b: divan::Bencher, how: &str) {
    use audithound::detect::EntityKind;
    use audithound::report::series;
    let f = fixture();
    let first = |kind: EntityKind, skip: usize| {
        (flagged().iter().filter(|e| e.kind == kind).nth(skip)).expect("an entity")
    };
    let charted = [
        first(EntityKind::Principal, 0),
        first(EntityKind::SourceIp, 0),
        first(EntityKind::Credential, 0),
        first(EntityKind::Network, 0),
        first(EntityKind::Principal, 1),
    ];
    let (options, time) = (DetectOptions::default(), time());
    let input = DetectInput::new(&f.events, &f.context, &options, &time, &f.files, &f.tokens);
    b.bench(|| match how {
        "one pass" => series::daily(&input, &charted, Some(charted[0]))
            .expect("daily")
            .0
            .len(),
        _ => (series::daily_by_polars(&f.events, &charted, Some(charted[0]), &time))
            .expect("polars")
            .0
            .len(),
    });
}
