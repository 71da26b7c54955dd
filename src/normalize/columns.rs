//! Column-wise accumulation of normalised events and conversion into a polars frame.

use std::sync::Arc;

use polars::prelude::*;

use super::dictionary::{CodeColumn, FileDict, LOOKAHEAD, NULL, StagedColumn};
use super::schema::{Field, RawRow, col};
use super::time::TimeParser;
use super::tokens::Tokens;
use crate::error::{FrameContext, Result};
use crate::frame::event_type;

/// Normalised events of one file, stored column-wise and handed over in chunks. Every string
/// field is dictionary encoded on the way in (codes in the run's dictionary of names, through the reader thread's [`Dictionaries`]; token ids as codes into the run's
/// [`Tokens`]; the event type over a dictionary of its own, [`event_type`]): a 10M-event export
/// holds a few hundred
/// thousand distinct principals, addresses and accounts and five keys, so a row
/// costs 4 bytes per field instead of 16–48, and every group-by and join downstream hashes
/// integers instead of strings.
pub struct EventColumns {
    ts: Vec<i64>,
    dicts: Dictionaries,
    /// The event type, two bytes a row (see [`crate::frame::event_type`]).
    event_type: Vec<u16>,
    /// The event types this reader has met, with their codes.
    event_types: event_type::Coder,
    /// Columns of few values, coded row by row.
    credential: CodeColumn,
    agent: CodeColumn,
    action: CodeColumn,
    /// Columns of many values, coded a chunk at a time (see [`super::dictionary`]).
    principal: StagedColumn,
    token: StagedColumn,
    source_ip: StagedColumn,
    target: StagedColumn,
    success: Vec<bool>,
    /// How many rows of the chunk name a user agent, an action, records, bytes: counted for the
    /// coverage report (records and bytes validated). `records` and `bytes` are not kept (16
    /// bytes a row, and nothing reads them); user agents and actions are, for the evidence of
    /// flagged entities (which endpoints, which clients).
    pub filled: [u64; 4],
    file: Vec<u32>,
    line: Vec<u64>,
    /// See [`MAX_FILE_STRINGS`] and [`MAX_FILE_TOKENS`].
    max_strings: usize,
    max_tokens: usize,
}

/// The dictionaries strings are coded with. A reader thread hands them from one file to the
/// next (`ingest::read_events`): files of one export share most principals, addresses and
/// accounts, which are then looked up in a warm table and placed in the run's dictionary
/// once per thread instead of once per file. The default has a token table of its own: readers of
/// one run share theirs ([`Dictionaries::new`]).
#[derive(Default)]
pub struct Dictionaries {
    dict: FileDict,
    /// Token ids apart: nearly every one is new, and in the shared table their millions of
    /// entries pushed the few hundred thousand principals, addresses and accounts, looked up on
    /// every row, out of the CPU cache.
    token_dict: FileDict,
    /// Where token ids get the codes the frame holds (see [`super::tokens`]).
    tokens: Arc<Tokens>,
}

impl Dictionaries {
    /// Empty dictionaries that place token ids in `tokens`.
    pub fn new(tokens: Arc<Tokens>) -> Self {
        Dictionaries {
            tokens,
            ..Dictionaries::default()
        }
    }
}

/// Distinct strings a dictionary may hold before it is cleared (see `take_frame`): 2Mi strings
/// held 4Mi slots of 32 bytes per reader, and the 85.9M-event export's ingest set its run's peak
/// with two of them; at 1Mi that peak fell 5.14–5.16 → 4.95–4.97 GB for 2.5 s more (about 7 s of
/// CPU placing strings again in polars' dictionary; two alternated pairs). At 512Ki it fell to
/// 4.86 GB for 3.6–5.0 s more, and the 10M CSV export's runs took 0.1–0.18 s longer (three
/// alternated pairs; at 1Mi no difference beyond the runs' own spread).
pub const MAX_FILE_STRINGS: usize = 1 << 20;

/// Distinct token ids a reader's token dictionary may hold before it is cleared. Nearly every id
/// is new, and an id cleared here and seen again is found in the run's token table instead; at
/// 2Mi (the strings' bound then) each reader's held 2M ids in 4M slots of 32 bytes, and reading the
/// 85.9M-event export held two such readers' dictionaries, 0.75 GB, at its peak: 5.56 → 5.16 GB.
/// The 10M CSV export's ingest took 2.31–2.34 s against 2.30–2.56 s (two alternated pairs).
pub const MAX_FILE_TOKENS: usize = 1 << 18;

impl Default for EventColumns {
    fn default() -> Self {
        EventColumns::new()
    }
}

impl EventColumns {
    pub fn new() -> Self {
        EventColumns::with_dictionaries(Dictionaries::default())
    }

    /// Columns that code strings with `dicts`, which an earlier file may have filled.
    pub fn with_dictionaries(dicts: Dictionaries) -> Self {
        EventColumns {
            dicts,
            max_tokens: MAX_FILE_TOKENS,
            ..EventColumns::with_string_limit(MAX_FILE_STRINGS)
        }
    }

    /// The dictionaries, for the next file.
    pub fn into_dictionaries(self) -> Dictionaries {
        self.dicts
    }

    fn with_string_limit(max_strings: usize) -> Self {
        EventColumns {
            ts: Vec::new(),
            dicts: Dictionaries::default(),
            event_type: Vec::new(),
            event_types: event_type::Coder::default(),
            credential: CodeColumn::new(),
            agent: CodeColumn::new(),
            action: CodeColumn::new(),
            principal: StagedColumn::default(),
            token: StagedColumn::default(),
            source_ip: StagedColumn::default(),
            target: StagedColumn::default(),
            success: Vec::new(),
            filled: [0; 4],
            file: Vec::new(),
            line: Vec::new(),
            max_strings,
            max_tokens: max_strings,
        }
    }

    /// Rows in the current chunk.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Normalises one raw row, or says why it cannot be. Nothing is pushed on error, so the
    /// columns always stay the same length.
    pub fn push(
        &mut self,
        row: &RawRow,
        time: &TimeParser,
        file: u32,
        line: u64,
    ) -> Result<(), String> {
        let ts = match row.get(Field::Timestamp) {
            Some(s) => time.parse(s)?,
            None => return Err("missing timestamp".into()),
        };
        let event_type = match row.get(Field::EventType).map(str::trim) {
            Some(s) if !s.is_empty() => s,
            _ => return Err("missing event_type".into()),
        };
        let success = parse_outcome(row.get(Field::Outcome))?;
        let records = parse_count(row.get(Field::Records), "records")?;
        let bytes = parse_count(row.get(Field::Bytes), "bytes")?;
        let dict = &mut self.dicts.dict;
        let lowered;
        let event_type = if event_type.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = event_type.to_ascii_lowercase();
            &lowered
        } else {
            event_type
        };
        // Every code first, then every push: a failure leaves all columns the same length.
        let mut code = |column: &mut CodeColumn, v| column.code(dict, v).map_err(|e| e.to_string());
        let event_type = self.event_types.code(event_type)?;
        let credential = code(&mut self.credential, row.get(Field::CredentialId))?;
        let agent = code(&mut self.agent, row.get(Field::UserAgent))?;
        let action = code(&mut self.action, row.get(Field::Action))?;
        self.event_type.push(event_type);
        self.credential.push(credential);
        self.agent.push(agent);
        self.action.push(action);
        self.principal.push(row.get(Field::Principal));
        self.token.push(row.get(Field::TokenId));
        self.source_ip.push(row.get(Field::SourceIp));
        self.target.push(row.get(Field::TargetAccount));
        self.ts.push(ts);
        self.success.push(success);
        let named = [
            row.get(Field::UserAgent).is_some(),
            row.get(Field::Action).is_some(),
            records.is_some(),
            bytes.is_some(),
        ];
        for (n, named) in self.filled.iter_mut().zip(named) {
            *n += u64::from(named);
        }
        self.file.push(file);
        self.line.push(line);
        Ok(())
    }

    /// The current chunk as the frame the detectors read; the file's dictionaries stay for the
    /// next chunk. Derived values that follow from one column (the day of `ts`, the number in an
    /// account id) are computed where needed, not stored.
    pub fn take_frame(&mut self) -> Result<DataFrame> {
        let [principal, token, source_ip, target] = self.code_staged().stage("encoding strings")?;
        let strings = [
            (col::PRINCIPAL, principal),
            (col::CREDENTIAL, self.credential.take()),
            (col::TOKEN, token),
            (col::SOURCE_IP, source_ip),
            (col::USER_AGENT, self.agent.take()),
            (col::ACTION, self.action.take()),
            (col::TARGET, target),
        ];
        let mut columns = Vec::with_capacity(strings.len() + 4);
        // Copied out exactly; the buffer stays for the next chunk. The instants wait beside the
        // frame (a cold column), so they are made where the other cold columns are
        // (`FileDict::column`), not in the frame's heap or files (`memory::frame_vec`), where a
        // big run wrote 8 bytes an event into the mapped files only to free them once spilled.
        let ts = self.ts.to_vec();
        self.ts.clear();
        columns.push(Column::new(col::TS.into(), ts));
        let types = crate::memory::frame_vec(self.event_type.iter().copied());
        self.event_type.clear();
        columns.push(event_type::column(col::EVENT_TYPE, types));
        for (name, codes) in strings {
            let column = if name == col::TOKEN {
                let tokens = &self.dicts.tokens;
                self.dicts.token_dict.token_column(name, &codes, tokens)
            } else {
                self.dicts.dict.column(name, &codes)
            };
            columns.push(column.stage("encoding strings")?);
        }
        columns.push(Column::new(col::SUCCESS.into(), refill(&mut self.success)));
        columns.push(Column::new(col::FILE.into(), refill(&mut self.file)));
        columns.push(Column::new(col::LINE.into(), refill(&mut self.line)));
        self.filled = [0; 4];
        // Codes already handed over are global, so a dictionary can start afresh between chunks:
        // a multi-GB export then holds at most this many strings per dictionary and reader thread
        // (~75 MB each) instead of every string it contains.
        if self.dicts.dict.len() > self.max_strings {
            self.dicts.dict.clear();
            for column in [&mut self.credential, &mut self.agent, &mut self.action] {
                column.forget();
            }
        }
        if self.dicts.token_dict.len() > self.max_tokens {
            self.dicts.token_dict.clear();
        }
        DataFrame::new_infer_height(columns).stage("building the event frame")
    }

    /// Codes the staged columns, row by row with the slots of later rows prefetched: principal,
    /// token, address and target account. The network of an address is derived when read
    /// ([`super::networks::network_column`]), not stored.
    fn code_staged(&mut self) -> PolarsResult<[Vec<u32>; 4]> {
        let Dictionaries {
            dict, token_dict, ..
        } = &mut self.dicts;
        let (who, whom, token, ip) = (&self.principal, &self.target, &self.token, &self.source_ip);
        let n = who.len();
        let (who_h, token_h, ip_h) = (who.hashes(dict), token.hashes(token_dict), ip.hashes(dict));
        // A customer's requests name its own account: no second hash or lookup.
        let own: Vec<bool> = (0..n)
            .map(|i| whom.get(i).is_some_and(|v| who.get(i) == Some(v)))
            .collect();
        let whom_h: Vec<u64> = (0..n)
            .map(|i| match whom.get(i) {
                Some(v) if !own[i] => dict.hash(v),
                _ => 0,
            })
            .collect();
        let mut out: [Vec<u32>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
        for i in 0..n {
            if i + LOOKAHEAD < n {
                let j = i + LOOKAHEAD;
                dict.prefetch(who_h[j]);
                dict.prefetch(ip_h[j]);
                dict.prefetch(whom_h[j]);
                token_dict.prefetch(token_h[j]);
            }
            let who_code = match who.get(i) {
                Some(v) => dict.code(who_h[i], v)?,
                None => NULL,
            };
            let whom_code = match whom.get(i) {
                Some(_) if own[i] => who_code,
                Some(v) => dict.code(whom_h[i], v)?,
                None => NULL,
            };
            let token_code = match token.get(i) {
                Some(v) => token_dict.code(token_h[i], v)?,
                None => NULL,
            };
            let ip_code = match ip.get(i) {
                Some(v) => dict.code(ip_h[i], v)?,
                None => NULL,
            };
            for (column, code) in out
                .iter_mut()
                .zip([who_code, token_code, ip_code, whom_code])
            {
                column.push(code);
            }
        }
        for column in [
            &mut self.principal,
            &mut self.token,
            &mut self.source_ip,
            &mut self.target,
        ] {
            column.clear();
        }
        Ok(out)
    }
}

/// A chunk's column, leaving an empty one sized like it: the next chunk of a file is as long, so
/// it is filled without regrowing.
pub(super) fn refill<T>(v: &mut Vec<T>) -> Vec<T> {
    std::mem::replace(v, Vec::with_capacity(v.len()))
}

/// The /24 (IPv4) or /64 (IPv6) an external address belongs to: scrapers rotate addresses inside
/// one provider's block, so the block is an entity of its own. Internal addresses get none: a
/// company's own /24 holds whole teams, and lumping them together says nothing.
pub fn network_of(ip: &str) -> Option<String> {
    let addr = ip.trim().parse::<std::net::IpAddr>().ok()?;
    if is_internal(&addr) {
        return None;
    }
    match addr {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
        }
    }
}

/// Private, loopback, link-local and unique-local addresses.
pub fn is_internal(addr: &std::net::IpAddr) -> bool {
    match addr {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The numeric part of an account id (`C00001234` → 1234), used to spot sequential walks.
pub fn account_number(account: &str) -> Option<i64> {
    let mut n: i64 = 0;
    let mut digits = 0;
    for d in account.bytes().filter(u8::is_ascii_digit) {
        digits += 1;
        if digits > 18 {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    (digits > 0).then_some(n)
}

/// `success`/`failure` and the usual spellings of both; missing means success. Anything else is a
/// reject rather than a guess, because a wrong guess would hide or invent a failed login.
fn parse_outcome(value: Option<&str>) -> Result<bool, String> {
    const SUCCESS: [&str; 8] = [
        "",
        "success",
        "succeeded",
        "ok",
        "allow",
        "allowed",
        "true",
        "pass",
    ];
    const FAILURE: [&str; 9] = [
        "failure", "fail", "failed", "deny", "denied", "error", "false", "reject", "rejected",
    ];
    let Some(v) = value else { return Ok(true) };
    let v = v.trim();
    // Compared in place: lowering a copy allocated once per event.
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(v));
    if is(&SUCCESS) {
        Ok(true)
    } else if is(&FAILURE) {
        Ok(false)
    } else {
        Err(format!("unknown outcome {v:?}"))
    }
}

fn parse_count(value: Option<&str>, what: &str) -> Result<Option<i64>, String> {
    match value {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("{what} is not an integer: {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_account_numbers() {
        assert_eq!(
            network_of("203.0.113.47").as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            network_of("2001:db8:1:2:3::4").as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(network_of("not-an-ip"), None);
        assert_eq!(network_of("10.20.0.15"), None);
        assert_eq!(account_number("C00001234"), Some(1234));
        assert_eq!(account_number("host-a"), None);
    }

    /// Values repeated across a dictionary reset keep their meaning: no stale remembered code.
    #[test]
    fn dictionary_reset_between_chunks_keeps_values() {
        let time = TimeParser::new(chrono_tz::UTC);
        let mut cols = EventColumns::with_string_limit(3);
        let mut frames = Vec::new();
        let names = [
            "alice", "bob", "alice", "carol", "dave", "alice", "alice", "erin",
        ];
        for (i, name) in names.iter().enumerate() {
            let mut row = RawRow::default();
            row.set(Field::Timestamp, "1700000000");
            row.set(Field::EventType, "login");
            row.set(Field::Principal, *name);
            row.set(Field::SourceIp, format!("203.0.113.{}", i % 2));
            cols.push(&row, &time, 0, i as u64 + 1).expect("valid row");
            if i % 2 == 1 {
                frames.push(cols.take_frame().expect("frame"));
            }
        }
        let mut all = frames.remove(0);
        for f in &frames {
            all.vstack_mut(f).expect("same schema");
        }
        let got = crate::frame::strs(&all, col::PRINCIPAL).expect("strings");
        assert_eq!(got, names);
        let nets = crate::frame::aligned(&all, &[col::NETWORK]).expect("networks");
        let nets = crate::frame::strs(&nets, col::NETWORK).expect("strings");
        assert!(nets.iter().all(|n| n == "203.0.113.0/24"), "{nets:?}");
    }

    /// The staged columns: a target that is not the principal, missing values, addresses that
    /// share a network and one that has none.
    #[test]
    fn staged_columns_keep_every_value() {
        let time = TimeParser::new(chrono_tz::UTC);
        let mut cols = EventColumns::new();
        let rows = [
            (
                Some("alice"),
                Some("alice"),
                Some("203.0.113.5"),
                Some("tk-1"),
            ),
            (Some("svc"), Some("C0001"), Some("203.0.113.9"), None),
            (None, Some("C0002"), None, Some("tk-1")),
            (Some("alice"), None, Some("10.0.0.1"), Some("tk-2")),
        ];
        for (i, (who, whom, ip, token)) in rows.iter().enumerate() {
            let mut row = RawRow::default();
            row.set(Field::Timestamp, "1700000000");
            row.set(Field::EventType, "access");
            row.set(Field::Principal, who.unwrap_or_default());
            row.set(Field::TargetAccount, whom.unwrap_or_default());
            row.set(Field::SourceIp, ip.unwrap_or_default());
            row.set(Field::TokenId, token.unwrap_or_default());
            cols.push(&row, &time, 0, i as u64 + 1).expect("valid row");
        }
        let mut frame = cols.take_frame().expect("frame");
        assert!(frame.column(col::NETWORK).is_err(), "derived, not stored");
        let networks = crate::normalize::networks::network_column(&frame).expect("networks");
        frame.with_column(networks).expect("column");
        let column = |name| crate::frame::texts(frame.column(name).expect("column")).expect("text");
        let owned = |v: [Option<&str>; 4]| v.map(|s| s.map(str::to_string)).to_vec();
        assert_eq!(column(col::PRINCIPAL), owned(rows.map(|r| r.0)));
        assert_eq!(column(col::TARGET), owned(rows.map(|r| r.1)));
        assert_eq!(column(col::SOURCE_IP), owned(rows.map(|r| r.2)));
        let token_codes = crate::frame::codes(&frame, col::TOKEN).expect("token codes");
        let tokens: Vec<Option<String>> = token_codes
            .into_iter()
            .map(|c| cols.dicts.tokens.text(c))
            .collect();
        assert_eq!(tokens, owned(rows.map(|r| r.3)));
        let net = Some("203.0.113.0/24");
        assert_eq!(column(col::NETWORK), owned([net, net, None, None]));
    }

    #[test]
    fn outcome_spellings() {
        assert_eq!(parse_outcome(None), Ok(true));
        assert_eq!(parse_outcome(Some("FAILURE")), Ok(false));
        assert_eq!(parse_outcome(Some("Success")), Ok(true));
        assert!(parse_outcome(Some("maybe")).is_err());
    }
}
