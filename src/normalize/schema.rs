//! The canonical event schema (documented for users in `docs/schema.md`).

/// Canonical input fields, in the documented order. Any may be absent except `timestamp` and
/// `event_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Timestamp,
    EventType,
    Principal,
    CredentialId,
    TokenId,
    SourceIp,
    UserAgent,
    Action,
    TargetAccount,
    Outcome,
    Records,
    Bytes,
}

impl Field {
    pub const ALL: [Field; 12] = [
        Field::Timestamp,
        Field::EventType,
        Field::Principal,
        Field::CredentialId,
        Field::TokenId,
        Field::SourceIp,
        Field::UserAgent,
        Field::Action,
        Field::TargetAccount,
        Field::Outcome,
        Field::Records,
        Field::Bytes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Timestamp => "timestamp",
            Field::EventType => "event_type",
            Field::Principal => "principal",
            Field::CredentialId => "credential_id",
            Field::TokenId => "token_id",
            Field::SourceIp => "source_ip",
            Field::UserAgent => "user_agent",
            Field::Action => "action",
            Field::TargetAccount => "target_account",
            Field::Outcome => "outcome",
            Field::Records => "records",
            Field::Bytes => "bytes",
        }
    }

    /// Maps a column or JSON key onto a canonical field; unknown names are ignored by the readers.
    pub fn from_name(name: &str) -> Option<Field> {
        // Exact names first: JSON lines repeat every key on every line, so this runs ~10 times per
        // event and the case-insensitive scan below showed up in profiles.
        if let Some(f) = Field::ALL.into_iter().find(|f| f.name() == name) {
            return Some(f);
        }
        let name = name.trim().trim_start_matches('\u{feff}');
        Field::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One input row as strings, indexed by [`Field::index`], borrowed from the reader's buffer when
/// possible. Empty strings are treated as absent.
#[derive(Debug, Default, Clone)]
pub struct RawRow<'a> {
    pub fields: [Option<std::borrow::Cow<'a, str>>; 12],
}

impl<'a> RawRow<'a> {
    #[inline]
    pub fn set(&mut self, field: Field, value: impl Into<std::borrow::Cow<'a, str>>) {
        let value = value.into();
        if !value.is_empty() {
            self.fields[field.index()] = Some(value);
        }
    }

    #[inline]
    pub fn get(&self, field: Field) -> Option<&str> {
        self.fields[field.index()].as_deref()
    }
}

/// Column names of the normalised frame the detectors read.
pub mod col {
    pub const TS: &str = "ts";
    pub const DAY: &str = "day";
    pub const EVENT_TYPE: &str = "event_type";
    pub const PRINCIPAL: &str = "principal";
    pub const CREDENTIAL: &str = "credential_id";
    pub const TOKEN: &str = "token_id";
    pub const SOURCE_IP: &str = "source_ip";
    /// /24 or /64 of `source_ip`, derived.
    pub const NETWORK: &str = "source_network";
    pub const TARGET: &str = "target_account";
    pub const USER_AGENT: &str = "user_agent";
    pub const ACTION: &str = "action";
    pub const SUCCESS: &str = "success";
    pub const RECORDS: &str = "records";
    pub const BYTES: &str = "bytes";
    pub const FILE: &str = "src_file";
    pub const LINE: &str = "src_line";
}

/// Milliseconds in a day. Daily buckets are local days ([`super::time::TimeParser::local_day`]).
pub const DAY_MS: i64 = 86_400_000;
pub const HOUR_MS: i64 = 3_600_000;

/// The instants an event may carry: 0000-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999Z. Outside
/// that range a timestamp is a corrupt field, not a date, and bounding it lets the detectors pack
/// an hour or day count next to a 32-bit key in one integer.
pub const TS_MIN: i64 = -62_167_219_200_000;
pub const TS_MAX: i64 = 253_402_300_799_999;
