//! Writes generated events in the formats real exports use: by default the gateway as CSV with
//! epoch milliseconds (one gzip file per 30 days), the token issuer as zstd JSON lines in UTC, and
//! SSO sign-ins as gzip JSON lines with a +09:00 offset. Benchmarks can ask for one format only.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Offset};
use serde_json::json;

use super::world::{GenEvent, Log};
use crate::error::{Error, Result};

enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::Encoder<'static, BufWriter<File>>),
}

struct Out {
    path: PathBuf,
    sink: Sink,
}

impl Out {
    fn create(path: PathBuf, codec: Option<&str>) -> Result<Out> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let (path, file) = {
            let path = match codec {
                Some(ext) => PathBuf::from(format!("{}.{ext}", path.display())),
                None => path,
            };
            let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
            (path, BufWriter::with_capacity(1 << 20, file))
        };
        let sink = match codec {
            Some("gz") => Sink::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::fast(),
            )),
            Some(_) => Sink::Zstd(zstd::Encoder::new(file, 3).map_err(|e| Error::io(&path, e))?),
            None => Sink::Plain(file),
        };
        Ok(Out { path, sink })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let r = match &mut self.sink {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Gzip(w) => w.write_all(bytes),
            Sink::Zstd(w) => w.write_all(bytes),
        };
        r.map_err(|e| Error::io(&self.path, e))
    }

    fn finish(self) -> Result<()> {
        let path = self.path;
        let r = match self.sink {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(w) => w.finish().and_then(|mut f| f.flush()),
            Sink::Zstd(w) => w.finish().and_then(|mut f| f.flush()),
        };
        r.map_err(|e| Error::io(&path, e))
    }
}

/// How the event files are laid out: real exports mix formats; benchmarks want one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    /// Gateway as CSV, issuance and SSO as JSON lines (the default, like real exports).
    Mixed,
    Csv,
    Jsonl,
}

pub struct Outputs {
    dir: PathBuf,
    compress: bool,
    format: EventFormat,
    gateway: Option<Out>,
    gateway_chunk: u32,
    issuance: Out,
    sso: Out,
}

const HEADER: &str = "timestamp,event_type,principal,credential_id,token_id,source_ip,user_agent,action,target_account,outcome,records\n";
const CHUNK_DAYS: u32 = 30;

impl Outputs {
    pub fn create(dir: &Path, compress: bool, format: EventFormat) -> Result<Outputs> {
        let codec = |c| compress.then_some(c);
        let ext = |csv: bool| if csv { "csv" } else { "jsonl" };
        let side_csv = format == EventFormat::Csv;
        let mut issuance = Out::create(
            dir.join(format!("auth/token-issuance.{}", ext(side_csv))),
            codec("zst"),
        )?;
        let mut sso = Out::create(
            dir.join(format!("sso/signin.{}", ext(side_csv))),
            codec("gz"),
        )?;
        if side_csv {
            issuance.write(HEADER.as_bytes())?;
            sso.write(HEADER.as_bytes())?;
        }
        Ok(Outputs {
            dir: dir.to_path_buf(),
            compress,
            format,
            gateway: None,
            gateway_chunk: u32::MAX,
            issuance,
            sso,
        })
    }

    pub fn write_day(&mut self, day: u32, events: Vec<GenEvent>) -> Result<()> {
        let chunk = day / CHUNK_DAYS;
        let gateway_csv = self.format != EventFormat::Jsonl;
        if chunk != self.gateway_chunk {
            if let Some(old) = self.gateway.take() {
                old.finish()?;
            }
            let ext = if gateway_csv { "csv" } else { "jsonl" };
            let path = self.dir.join(format!("gateway/access-{chunk:03}.{ext}"));
            let mut out = Out::create(path, self.compress.then_some("gz"))?;
            if gateway_csv {
                out.write(HEADER.as_bytes())?;
            }
            self.gateway = Some(out);
            self.gateway_chunk = chunk;
        }
        let side_csv = self.format == EventFormat::Csv;
        let mut gw = String::new();
        let mut iss = String::new();
        let mut sso = String::new();
        for e in events {
            let (ts, csv, out) = match e.log {
                Log::Gateway => (e.ts.to_string(), gateway_csv, &mut gw),
                Log::Issuance => (rfc3339(e.ts, 0), side_csv, &mut iss),
                Log::Sso => (rfc3339(e.ts, 9), side_csv, &mut sso),
            };
            if csv {
                csv_line(&e, &ts, out)
            } else {
                json_line(&e, ts, out)
            }
        }
        if let Some(g) = self.gateway.as_mut() {
            g.write(gw.as_bytes())?;
        }
        self.issuance.write(iss.as_bytes())?;
        self.sso.write(sso.as_bytes())
    }

    pub fn finish(self) -> Result<()> {
        if let Some(g) = self.gateway {
            g.finish()?;
        }
        self.issuance.finish()?;
        self.sso.finish()
    }
}

fn rfc3339(ms: i64, offset_hours: i32) -> String {
    let tz = FixedOffset::east_opt(offset_hours * 3600).unwrap_or(chrono::Utc.fix());
    DateTime::from_timestamp_millis(ms)
        .map(|d| {
            d.with_timezone(&tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .unwrap_or_default()
}

fn csv_line(e: &GenEvent, ts: &str, out: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{}",
        ts,
        e.event_type,
        e.principal,
        e.credential.as_deref().unwrap_or(""),
        e.token.as_deref().unwrap_or(""),
        e.source_ip,
        e.user_agent.replace(',', " "),
        e.action,
        e.target.as_deref().unwrap_or(""),
        if e.success { "success" } else { "failure" },
        e.records.map(|r| r.to_string()).unwrap_or_default(),
    );
}

fn json_line(e: &GenEvent, ts: String, out: &mut String) {
    let v = json!({
        "timestamp": ts,
        "event_type": e.event_type,
        "principal": e.principal,
        "credential_id": e.credential,
        "token_id": e.token,
        "source_ip": e.source_ip,
        "user_agent": e.user_agent,
        "action": e.action,
        "target_account": e.target,
        "outcome": if e.success { "success" } else { "failure" },
    });
    out.push_str(&v.to_string());
    out.push('\n');
}
