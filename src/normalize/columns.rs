//! Column-wise accumulation of normalised events and conversion into a polars frame.

use polars::prelude::*;

use super::dictionary::{CodeColumn, FileDict, NULL};
use super::schema::{Field, RawRow, col};
use super::time::TimeParser;
use crate::error::{FrameContext, Result};

/// Normalised events of one file, stored column-wise and handed over in chunks. Every string
/// field is dictionary encoded on the way in (polars categoricals over the process-wide
/// dictionary, through the reader thread's [`Dictionaries`]): a 10M-event export holds a few hundred
/// thousand distinct principals, addresses and accounts, five keys and four user agents, so a row
/// costs 4 bytes per field instead of 16–48, and every group-by and join downstream hashes
/// integers instead of strings.
pub struct EventColumns {
    ts: Vec<i64>,
    dicts: Dictionaries,
    /// In [`STRING_COLUMNS`] order.
    strings: [CodeColumn; 9],
    success: Vec<bool>,
    /// `records` and `bytes` are validated and counted for the coverage report, but no detector
    /// reads them yet, so they are not kept in the frame (16 bytes a row).
    pub records_filled: u64,
    pub bytes_filled: u64,
    file: Vec<u32>,
    line: Vec<u64>,
    /// See [`MAX_FILE_STRINGS`].
    max_strings: usize,
}

/// The dictionaries strings are coded with. A reader thread hands them from one file to the
/// next (`ingest::read_events`): files of one export share most principals, addresses and
/// accounts, which are then looked up in a warm table and placed in the process-wide dictionary
/// once per thread instead of once per file.
#[derive(Default)]
pub struct Dictionaries {
    dict: FileDict,
    /// Token ids apart: nearly every one is new, and in the shared table their millions of
    /// entries pushed the few hundred thousand principals, addresses and accounts, looked up on
    /// every row, out of the CPU cache.
    token_dict: FileDict,
    /// The network code of each address code seen: an address is parsed once.
    networks: Vec<Option<u32>>,
}

/// Distinct strings a dictionary may hold before it is cleared (see `take_frame`).
const MAX_FILE_STRINGS: usize = 2 << 20;

/// Position of `token_id` in [`STRING_COLUMNS`].
const TOKEN_COLUMN: usize = 3;

/// The string columns, in frame order.
const STRING_COLUMNS: [&str; 9] = [
    col::EVENT_TYPE,
    col::PRINCIPAL,
    col::CREDENTIAL,
    col::TOKEN,
    col::SOURCE_IP,
    col::NETWORK,
    col::USER_AGENT,
    col::ACTION,
    col::TARGET,
];

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
            strings: STRING_COLUMNS.map(CodeColumn::new),
            success: Vec::new(),
            records_filled: 0,
            bytes_filled: 0,
            file: Vec::new(),
            line: Vec::new(),
            max_strings,
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
        let event_type = match row.get(Field::EventType) {
            Some(s) => s.trim(),
            None => return Err("missing event_type".into()),
        };
        let success = parse_outcome(row.get(Field::Outcome))?;
        let records = parse_count(row.get(Field::Records), "records")?;
        let bytes = parse_count(row.get(Field::Bytes), "bytes")?;
        let Dictionaries {
            dict,
            token_dict,
            networks,
        } = &mut self.dicts;
        let [
            et,
            principal,
            credential,
            token,
            source_ip,
            network,
            agent,
            action,
            target,
        ] = &mut self.strings;
        let event_type = if event_type.bytes().any(|b| b.is_ascii_uppercase()) {
            et.code(dict, Some(&event_type.to_ascii_lowercase()))?
        } else {
            et.code(dict, Some(event_type))?
        };
        let ip = row.get(Field::SourceIp);
        let ip_code = source_ip.code(dict, ip)?;
        let net_code = match (ip, networks.get(ip_code as usize)) {
            (None, _) => NULL,
            (Some(_), Some(Some(net))) => *net,
            (Some(ip), _) => {
                let net = network.code(dict, network_of(ip).as_deref())?;
                let i = ip_code as usize;
                if networks.len() <= i {
                    networks.resize(i + 1, None);
                }
                networks[i] = Some(net);
                net
            }
        };
        let who = row.get(Field::Principal);
        let who_code = principal.code(dict, who)?;
        let whom = row.get(Field::TargetAccount);
        // A customer's requests name its own account: no second lookup.
        let whom_code = match whom {
            Some(_) if whom == who => who_code,
            _ => target.code(dict, whom)?,
        };
        // Every code first, then every push: a failure leaves all columns the same length.
        let codes = [
            event_type,
            who_code,
            credential.code(dict, row.get(Field::CredentialId))?,
            token.code(token_dict, row.get(Field::TokenId))?,
            ip_code,
            net_code,
            agent.code(dict, row.get(Field::UserAgent))?,
            action.code(dict, row.get(Field::Action))?,
            whom_code,
        ];
        for (column, code) in self.strings.iter_mut().zip(codes) {
            column.push(code);
        }
        self.ts.push(ts);
        self.success.push(success);
        self.records_filled += u64::from(records.is_some());
        self.bytes_filled += u64::from(bytes.is_some());
        self.file.push(file);
        self.line.push(line);
        Ok(())
    }

    /// The current chunk as the frame the detectors read; the file's dictionaries stay for the
    /// next chunk. Derived values that follow from one column (the day of `ts`, the number in an
    /// account id) are computed where needed, not stored.
    pub fn take_frame(&mut self) -> Result<DataFrame> {
        let mut columns = Vec::with_capacity(STRING_COLUMNS.len() + 4);
        columns.push(Column::new(col::TS.into(), refill(&mut self.ts)));
        for (i, column) in self.strings.iter_mut().enumerate() {
            let dict = if i == TOKEN_COLUMN {
                &mut self.dicts.token_dict
            } else {
                &mut self.dicts.dict
            };
            columns.push(column.take_column(dict).stage("encoding strings")?);
        }
        columns.push(Column::new(col::SUCCESS.into(), refill(&mut self.success)));
        columns.push(Column::new(col::FILE.into(), refill(&mut self.file)));
        columns.push(Column::new(col::LINE.into(), refill(&mut self.line)));
        self.records_filled = 0;
        self.bytes_filled = 0;
        // Codes already handed over are global, so a dictionary can start afresh between chunks:
        // a multi-GB export then holds at most this many strings per dictionary and reader thread
        // (~150 MB each) instead of every token id it contains.
        if self.dicts.dict.len() > self.max_strings {
            self.dicts.dict.clear();
            self.dicts.networks.clear();
            self.strings.iter_mut().for_each(CodeColumn::forget);
        }
        if self.dicts.token_dict.len() > self.max_strings {
            self.dicts.token_dict.clear();
            self.strings[TOKEN_COLUMN].forget();
        }
        DataFrame::new_infer_height(columns).stage("building the event frame")
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
        let nets = crate::frame::strs(&all, col::NETWORK).expect("strings");
        assert!(nets.iter().all(|n| n == "203.0.113.0/24"), "{nets:?}");
    }

    #[test]
    fn outcome_spellings() {
        assert_eq!(parse_outcome(None), Ok(true));
        assert_eq!(parse_outcome(Some("FAILURE")), Ok(false));
        assert_eq!(parse_outcome(Some("Success")), Ok(true));
        assert!(parse_outcome(Some("maybe")).is_err());
    }
}
