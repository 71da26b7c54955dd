//! Timestamp parsing. Exports mix RFC 3339 with offsets, naive local times and epoch numbers, so
//! every timestamp is reduced to UTC milliseconds; naive times are read in the company time zone.

use std::sync::OnceLock;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

use super::schema::{DAY_MS, TS_MAX, TS_MIN};

/// Reads timestamps and dates in one configured time zone.
#[derive(Debug, Clone, Copy)]
pub struct TimeParser {
    pub tz: Tz,
}

const OFFSET_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    // Common Log Format, as web servers and API Gateway's `$context.requestTime` write it.
    "%d/%b/%Y:%H:%M:%S %z",
];

const NAIVE_FORMATS: [&str; 4] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// [`OFFSET_FORMATS`] and [`NAIVE_FORMATS`] compiled once: `parse_from_str` lexes its format
/// string on every call, which was a sixth of reading an auth log (every stamp naive).
struct Compiled {
    offset: Vec<Vec<Item<'static>>>,
    naive: Vec<Vec<Item<'static>>>,
}

fn compiled() -> &'static Compiled {
    static C: OnceLock<Compiled> = OnceLock::new();
    C.get_or_init(|| {
        let compile = |formats: &[&str]| -> Vec<Vec<Item<'static>>> {
            formats
                .iter()
                .map(|f| {
                    StrftimeItems::new(f)
                        .parse_to_owned()
                        .unwrap_or_else(|e| unreachable!("static time format {f}: {e}"))
                })
                .collect()
        };
        Compiled {
            offset: compile(&OFFSET_FORMATS),
            naive: compile(&NAIVE_FORMATS),
        }
    })
}

/// What `DateTime::parse_from_str` does, with the format already compiled.
fn parse_with_offset(s: &str, items: &[Item<'static>]) -> Option<DateTime<FixedOffset>> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, s, items.iter()).ok()?;
    parsed.to_datetime().ok()
}

/// What `NaiveDateTime::parse_from_str` does, with the format already compiled.
fn parse_naive(s: &str, items: &[Item<'static>]) -> Option<NaiveDateTime> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, s, items.iter()).ok()?;
    parsed.to_naive_datetime_with_offset(0).ok()
}

impl TimeParser {
    pub fn new(tz: Tz) -> Self {
        TimeParser { tz }
    }

    /// Parses an event timestamp into UTC epoch milliseconds. An instant outside 1990–2099 is a
    /// corrupt field (an epoch 0, a year 9999 sentinel), not a log time: kept, two of them pushed
    /// every day-indexed table and chart to a span of 10,000 years (6 GB for a 400 KB file).
    pub fn parse(&self, s: &str) -> Result<i64, String> {
        let ms = self.parse_any(s)?;
        if (PLAUSIBLE_MIN..PLAUSIBLE_MAX).contains(&ms) {
            return Ok(ms);
        }
        // Seconds or milliseconds from 1970 that end before 1990 are most often a count from
        // the start of a capture: say how to place them.
        let relative = (0..PLAUSIBLE_MIN).contains(&ms)
            && s.trim().bytes().all(|b| b.is_ascii_digit() || b == b'.');
        Err(format!(
            "timestamp {:?} outside the plausible range 1990-01-01 to 2099-12-31{}",
            s.trim(),
            if relative {
                " (a time relative to a start? a mapping profile places it: [time] origin)"
            } else {
                ""
            }
        ))
    }

    /// Parses a context date or instant (`--from`, roster and inventory dates), within years
    /// 0000–9999: a hire date may be old, and no chart is indexed by it.
    fn parse_context(&self, s: &str) -> Result<i64, String> {
        let ms = self.parse_any(s)?;
        if (TS_MIN..=TS_MAX).contains(&ms) {
            Ok(ms)
        } else {
            Err(format!("timestamp outside years 0000-9999 {:?}", s.trim()))
        }
    }

    fn parse_any(&self, s: &str) -> Result<i64, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty timestamp".into());
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return parse_epoch(s);
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(dt.timestamp_millis());
        }
        // Offset forms other than RFC 3339 are only worth trying when an offset is there: a
        // naive time would fail three slow parses first (about 1 µs per event).
        let has_offset = s
            .get(16..)
            .is_some_and(|tail| tail.contains(['+', '-', 'Z', 'z']));
        let formats = compiled();
        for items in if has_offset { &formats.offset[..] } else { &[] } {
            if let Some(dt) = parse_with_offset(s, items) {
                return Ok(dt.timestamp_millis());
            }
        }
        let naive = s.trim_end_matches(['Z', 'z']);
        for items in &formats.naive {
            if let Some(ndt) = parse_naive(naive, items) {
                if naive.len() != s.len() {
                    return Ok(ndt.and_utc().timestamp_millis());
                }
                return self.local_to_utc(ndt);
            }
        }
        Err(format!("unrecognised timestamp {s:?}"))
    }

    /// Parses a calendar date (or a full timestamp) and returns the first instant of the *next*
    /// local day: a termination date D means access is legitimate through the end of D.
    pub fn end_of_day(&self, s: &str) -> Result<i64, String> {
        let s = s.trim();
        if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            let next = date
                .succ_opt()
                .ok_or_else(|| format!("date out of range {s:?}"))?;
            return self.day_start(next, s);
        }
        self.parse_context(s)
    }

    /// Parses a calendar date (or a full timestamp) as its first local instant.
    pub fn start_of_day(&self, s: &str) -> Result<i64, String> {
        let s = s.trim();
        if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return self.day_start(date, s);
        }
        self.parse_context(s)
    }

    /// The first instant of a local day. Where a DST change skips midnight (America/Santiago,
    /// Asia/Beirut) the day starts at the first local time that exists, not with an error that
    /// stopped the whole run.
    fn day_start(&self, date: NaiveDate, text: &str) -> Result<i64, String> {
        let midnight = date.and_time(chrono::NaiveTime::MIN);
        (0..=8)
            .find_map(|quarter| {
                let t = midnight + chrono::Duration::minutes(15 * quarter);
                self.local_to_utc(t).ok()
            })
            .ok_or_else(|| format!("the day {text:?} has no start in {}", self.tz))
    }

    fn local_to_utc(&self, ndt: NaiveDateTime) -> Result<i64, String> {
        // An ambiguous local time (DST fold) takes the earlier instant; a skipped one is refused.
        self.tz
            .from_local_datetime(&ndt)
            .earliest()
            .map(|dt| dt.timestamp_millis())
            .ok_or_else(|| format!("local time {ndt} does not exist in {}", self.tz))
    }

    /// The local calendar day of an instant (days since 1970-01-01 on the local calendar) and
    /// the instants it spans. Reports print local dates, so every daily bucket must be a local
    /// day too: a UTC bucket put a New York evening burst on the next day's date.
    pub fn local_day(&self, ms: i64) -> LocalDay {
        if self.tz == chrono_tz::UTC {
            let day = ms.div_euclid(DAY_MS);
            return LocalDay {
                day,
                start: day * DAY_MS,
                end: (day + 1) * DAY_MS,
            };
        }
        if let Some(table) = self.table()
            && let Some(day) = table.day_of(ms)
        {
            return day;
        }
        let day = self.local_ms(ms).div_euclid(DAY_MS);
        let (start, end) = (self.day_start_ms(day), self.day_start_ms(day + 1));
        if (start..end).contains(&ms) {
            LocalDay { day, start, end }
        } else {
            // Only where a zone's rules are not monotonic around `ms`; UTC days never mislead.
            let day = ms.div_euclid(DAY_MS);
            LocalDay {
                day,
                start: day * DAY_MS,
                end: (day + 1) * DAY_MS,
            }
        }
    }

    /// An instant on the local wall clock, as milliseconds since a local 1970-01-01: local day
    /// and hour are its quotients, and chart axes use it (whole numbers of days fall on local
    /// midnights).
    pub fn local_ms(&self, ms: i64) -> i64 {
        if self.tz == chrono_tz::UTC {
            return ms;
        }
        let offset = self.tz.timestamp_millis_opt(ms).single().map_or(0, |dt| {
            i64::from(dt.offset().fix().local_minus_utc()) * 1000
        });
        ms + offset
    }

    /// The first instant of local day `day` (DST-safe, see [`TimeParser::day_start`]).
    pub fn day_start_ms(&self, day: i64) -> i64 {
        if self.tz == chrono_tz::UTC {
            return day * DAY_MS;
        }
        if let Some(start) = self.table().and_then(|t| t.start_of(day)) {
            return start;
        }
        NaiveDate::from_num_days_from_ce_opt((day + UNIX_EPOCH_CE_DAYS) as i32)
            .and_then(|date| self.day_start(date, "").ok())
            .unwrap_or(day * DAY_MS)
    }

    /// The local midnights of the plausible event range in this zone, shared by the process.
    /// Finding a day's start through the zone's rules takes about a microsecond, and a pass over
    /// sorted events asks once per entity and day (millions of times at 10M events); a sorted
    /// table answers by binary search. One zone per process is cached (a run has one).
    fn table(&self) -> Option<&'static DayTable> {
        static TABLE: OnceLock<DayTable> = OnceLock::new();
        let table = TABLE.get_or_init(|| DayTable::new(self));
        (table.tz == self.tz).then_some(table)
    }

    /// A local day number as a date.
    pub fn format_day(&self, day: i64) -> String {
        day_text(day)
    }

    /// Formats UTC milliseconds as RFC 3339 in the configured zone (reports use it everywhere).
    pub fn format(&self, ms: i64) -> String {
        match self.tz.timestamp_millis_opt(ms).single() {
            Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            None => ms.to_string(),
        }
    }

    /// Formats UTC milliseconds as a local calendar date.
    pub fn format_date(&self, ms: i64) -> String {
        match self.tz.timestamp_millis_opt(ms).single() {
            Some(dt) => dt.format("%Y-%m-%d").to_string(),
            None => ms.to_string(),
        }
    }
}

/// A day number (days since 1970-01-01 on some calendar) as `YYYY-MM-DD`.
pub fn day_text(day: i64) -> String {
    NaiveDate::from_num_days_from_ce_opt((day + UNIX_EPOCH_CE_DAYS) as i32)
        .map_or_else(|| day.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i64 = 719_163;

/// Local midnights from just before [`PLAUSIBLE_MIN`] to just after [`PLAUSIBLE_MAX`].
struct DayTable {
    tz: Tz,
    /// Day number of `starts[0]`.
    first: i64,
    starts: Vec<i64>,
}

impl DayTable {
    fn new(time: &TimeParser) -> DayTable {
        let first = PLAUSIBLE_MIN.div_euclid(DAY_MS) - 2;
        let last = PLAUSIBLE_MAX.div_euclid(DAY_MS) + 2;
        let starts = (first..=last)
            .map(|day| {
                NaiveDate::from_num_days_from_ce_opt((day + UNIX_EPOCH_CE_DAYS) as i32)
                    .and_then(|date| time.day_start(date, "").ok())
                    .unwrap_or(day * DAY_MS)
            })
            .collect();
        DayTable {
            tz: time.tz,
            first,
            starts,
        }
    }

    fn day_of(&self, ms: i64) -> Option<LocalDay> {
        let i = self.starts.partition_point(|&s| s <= ms).checked_sub(1)?;
        let end = *self.starts.get(i + 1)?;
        Some(LocalDay {
            day: self.first + i as i64,
            start: self.starts[i],
            end,
        })
    }

    fn start_of(&self, day: i64) -> Option<i64> {
        let i = usize::try_from(day - self.first).ok()?;
        self.starts.get(i).copied()
    }
}

/// One local calendar day: its number and the instants `[start, end)` it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDay {
    pub day: i64,
    pub start: i64,
    pub end: i64,
}

/// Local days of instants read mostly in time order: the zone is consulted only when an instant
/// leaves the current day, so a sorted pass costs one comparison per row.
#[derive(Debug, Clone, Copy)]
pub struct Days {
    time: TimeParser,
    current: LocalDay,
}

impl Days {
    pub fn new(time: TimeParser) -> Days {
        Days {
            time,
            current: LocalDay {
                day: 0,
                start: 0,
                end: 0,
            },
        }
    }

    /// The local day number of `ms`.
    #[inline]
    pub fn of(&mut self, ms: i64) -> i64 {
        if ms < self.current.start || ms >= self.current.end {
            self.current = self.time.local_day(ms);
        }
        self.current.day
    }
}

/// Event instants outside [1990-01-01, 2100-01-01) UTC are rejected (see [`TimeParser::parse`]).
pub const PLAUSIBLE_MIN: i64 = 631_152_000_000;
pub const PLAUSIBLE_MAX: i64 = 4_102_444_800_000;

/// The last instant an epoch number may name (9999-12-31T23:59:59Z).
const EPOCH_MAX_MS: i64 = 253_402_300_799_000;

/// Epoch numbers: seconds below 1e11 (year 5138), milliseconds below 1e14, then micro- and
/// nanoseconds. Fractions are allowed on seconds.
fn parse_epoch(s: &str) -> Result<i64, String> {
    // Whole numbers (nearly every export) in integers: the float parse was 1 % of CSV ingest.
    if let Ok(v) = s.parse::<u64>() {
        let rounded = |unit: u64| v / unit + u64::from(v % unit >= unit / 2);
        let ms = match v {
            0..100_000_000_000 => v * 1000,
            100_000_000_000..100_000_000_000_000 => v,
            100_000_000_000_000..100_000_000_000_000_000 => rounded(1000),
            _ => rounded(1_000_000),
        };
        return i64::try_from(ms)
            .ok()
            .filter(|&ms| ms <= EPOCH_MAX_MS)
            .ok_or_else(|| format!("timestamp out of range {s:?}"));
    }
    let v: f64 = s
        .parse()
        .map_err(|_| format!("unrecognised timestamp {s:?}"))?;
    let ms = if v < 1e11 {
        v * 1e3
    } else if v < 1e14 {
        v
    } else if v < 1e17 {
        v / 1e3
    } else {
        v / 1e6
    };
    if !ms.is_finite() || ms > EPOCH_MAX_MS as f64 {
        return Err(format!("timestamp out of range {s:?}"));
    }
    Ok(ms.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> TimeParser {
        TimeParser::new(chrono_tz::UTC)
    }

    /// 22:30 in New York on March 30 is 02:30 UTC on March 31: the local day is March 30, and
    /// it spans New York's midnights. In Santiago, 2025-09-07 starts at 01:00 (no midnight).
    #[test]
    fn local_days_follow_the_zone_and_its_dst_gaps() {
        let ny = TimeParser::new(chrono_tz::America::New_York);
        let at = utc().parse("2025-03-31T02:30:00Z").expect("instant");
        let day = ny.local_day(at);
        assert_eq!(ny.format_day(day.day), "2025-03-30");
        assert_eq!(ny.format(day.start), "2025-03-30T00:00:00-04:00");
        assert_eq!(ny.format(day.end), "2025-03-31T00:00:00-04:00");
        assert_eq!(utc().format_day(utc().local_day(at).day), "2025-03-31");
        let mut days = Days::new(ny);
        assert_eq!(days.of(at), day.day);
        assert_eq!(days.of(day.end), day.day + 1);
        let santiago = TimeParser::new(chrono_tz::America::Santiago);
        let first = utc().parse("2025-09-07T04:00:00Z").expect("instant"); // 01:00 -03
        let d = santiago.local_day(first);
        assert_eq!(
            (santiago.format_day(d.day), d.start),
            ("2025-09-07".into(), first)
        );
        assert_eq!(santiago.day_start_ms(d.day), first);
        assert_eq!(santiago.local_day(first - 1).day, d.day - 1);
    }

    #[test]
    fn every_documented_form_lands_on_the_same_instant() {
        let seoul = TimeParser::new(chrono_tz::Asia::Seoul);
        let want = 1_735_700_400_000; // 2025-01-01T03:00:00Z
        assert_eq!(utc().parse("2025-01-01T03:00:00Z"), Ok(want));
        assert_eq!(utc().parse("2025-01-01T12:00:00+09:00"), Ok(want));
        assert_eq!(utc().parse("2025-01-01 12:00:00+09:00"), Ok(want));
        assert_eq!(seoul.parse("2025-01-01 12:00:00"), Ok(want));
        assert_eq!(utc().parse("1735700400"), Ok(want));
        assert_eq!(utc().parse("1735700400000"), Ok(want));
        assert_eq!(utc().parse("1735700400.000"), Ok(want));
        assert_eq!(utc().parse("01/Jan/2025:12:00:00 +0900"), Ok(want));
    }

    /// Whole epoch numbers (read as integers) land where the same number with a fraction does,
    /// in every unit, rounding halves up, and the last second of 9999 is the limit.
    #[test]
    fn epoch_integers_agree_with_fractions() {
        let cases = [
            "0",
            "1735700400",
            "99999999999",
            "1735700400123",
            "1735700400123499",
            "1735700400123500",
            "1735700400123500000",
            "253402300799",
            "253402300799000",
        ];
        for whole in cases {
            let fraction = format!("{whole}.0");
            assert_eq!(parse_epoch(whole), parse_epoch(&fraction), "{whole}");
        }
        assert_eq!(parse_epoch("1735700400123500"), Ok(1_735_700_400_124));
        // Nanoseconds past a float's 53 bits: the integer path keeps the digits a float lost.
        assert_eq!(parse_epoch("1735700400123499999"), Ok(1_735_700_400_123));
        assert!(parse_epoch("9999999999999999999999999").is_err());
        assert_eq!(parse_epoch("18446744073709551615"), Ok(18_446_744_073_710));
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_when_the_clock_resumes() {
        // Chile moved its clocks from 00:00 to 01:00 on 2022-09-11.
        let t = TimeParser::new(chrono_tz::America::Santiago);
        let start = t.start_of_day("2022-09-11").expect("the day exists");
        assert_eq!(t.format(start), "2022-09-11T01:00:00-03:00");
        let end = t.end_of_day("2022-09-10").expect("the day before ends");
        assert_eq!(end, start);
    }

    #[test]
    fn event_instants_outside_1990_to_2099_are_refused() {
        assert_eq!(utc().parse("1990-01-01T00:00:00Z"), Ok(PLAUSIBLE_MIN));
        assert_eq!(
            utc().parse("2099-12-31T23:59:59.999Z"),
            Ok(PLAUSIBLE_MAX - 1)
        );
        for bad in [
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "0",
            "1989-12-31T23:59:59Z",
        ] {
            let err = utc().parse(bad).unwrap_err();
            assert!(err.contains("plausible range"), "{bad}: {err}");
        }
        assert!(utc().parse("+10000-01-01T00:00:00Z").is_err());
        // Context dates keep the wide range: hire dates can be old.
        assert_eq!(utc().start_of_day("0000-01-01T00:00:00Z"), Ok(TS_MIN));
        assert!(utc().start_of_day("-0001-12-31T23:59:59Z").is_err());
    }

    #[test]
    fn garbage_is_refused_with_the_value() {
        let err = utc().parse("yesterday").unwrap_err();
        assert!(err.contains("yesterday"), "{err}");
        assert!(utc().parse("").is_err());
    }

    #[test]
    fn termination_day_is_inclusive_in_company_zone() {
        let seoul = TimeParser::new(chrono_tz::Asia::Seoul);
        // End of 2025-01-01 in Seoul is 2025-01-01T15:00Z.
        assert_eq!(seoul.end_of_day("2025-01-01"), Ok(1_735_743_600_000));
    }
}
