//! Linux authentication logs (`/var/log/auth.log`, `/var/log/secure`): sshd logins and sudo.
//! Classic syslog omits the year and the zone, so both come from the run (`--syslog-year`,
//! `--timezone`); RFC 3339 syslog stamps (rsyslog's high-precision format) carry their own.
//! A file is written in time order, so a month that goes backwards (December, then January) means
//! the year turned: [`Years`] follows it rather than filing January eleven months too early.

use std::sync::OnceLock;

use regex::Regex;

use crate::normalize::{Field, RawRow};

/// What one syslog line is.
pub enum Line {
    Event(Box<RawRow<'static>>),
    /// A line of another program or message (cron, systemd, session closed): not an auth event.
    Other,
}

struct Patterns {
    header: Regex,
    rfc5424: Regex,
    accepted: Regex,
    failed: Regex,
    invalid: Regex,
    sudo: Regex,
    su: Regex,
    pam_failure: Regex,
    /// A stamp and a host, whatever follows: a syslog line whose program tag is of no known
    /// shape (`combo  -- root[2421]: ROOT LOGIN ON tty2`, as `login` writes it).
    loose: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        // `prog[pid]:`, `prog(pam_unix)[pid]:` (older PAM), `syslogd 1.4.1: restart.`, and the
        // daemon's own `-- MARK --` lines, which carry no program at all.
        header: Regex::new(
            r"^(?P<ts>[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+) (?P<host>[^ ]+) (?:(?P<prog>[A-Za-z0-9_./-]+)(?:\([A-Za-z0-9_]+\))?(?: [0-9][0-9.]*)?(?:\[[0-9]+\])?: (?P<msg>.*)|-- MARK --)$",
        )
        .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        // RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`), as rsyslog's
        // `RSYSLOG_SyslogProtocol23Format` and syslog-ng write it, with or without the `<PRI>`.
        rfc5424: Regex::new(
            r"^(?:<[0-9]{1,3}>)?1 (?P<ts>[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+) (?P<host>[^ ]+) (?P<prog>[^ ]+) [^ ]+ [^ ]+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: \x{feff}?(?P<msg>.*))?$",
        )
        .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        loose: Regex::new(
            r"^(?:[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+) [^ ]+ ",
        )
        .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        pam_failure: Regex::new(
            r"^(?:pam_unix\([a-z0-9_-]+:auth\): )?authentication failure;.*\brhost=(?P<ip>\S*)(?:\s+user=(?P<user>\S+))?",
        )
        .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        accepted: Regex::new(r"^Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<ip>\S+) port \d+")
            .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        failed: Regex::new(r"^Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>\S+) from (?P<ip>\S+) port \d+")
            .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        invalid: Regex::new(r"^Invalid user (?P<user>\S*) from (?P<ip>\S+)")
            .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        // `su(pam_unix)[pid]: session opened for user root by alice(uid=1000)` and the current
        // `pam_unix(su-l:session): session opened for user root(uid=0) by alice(uid=1000)`.
        su: Regex::new(
            r"^(?:pam_unix\(su(?:-l)?:session\): )?session opened for user (?P<target>[^\s(]+)(?:\(uid=\d+\))? by (?P<user>[^\s(]*)\(uid=\d+\)",
        )
        .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        sudo: Regex::new(r"^\s*(?P<user>\S+) : .*USER=(?P<target>\S+) ; COMMAND=(?P<cmd>.*)$")
            .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
    })
}

/// Actions of lines that announce an attempt sshd also logs as `Failed password for …` when a
/// password is tried: `Invalid user X from IP` as the connection starts, PAM's `authentication
/// failure` at its first failure. They carry [`crate::normalize::profile::NOTICE`] and count as
/// failures only for addresses without such `Failed` lines: counted both ways, loghub's public
/// 2,000-line OpenSSH sample read 553 failed logins on root where sshd logged 277.
const NOTICE_INVALID_USER: &str = "sshd:notice:invalid_user";
const NOTICE_PAM_FAILURE: &str = "sshd:notice:pam_failure";

/// The year of the classic syslog stamps of one file, as it is read in order.
pub struct Years {
    /// `None` until the first stamp when the year is inferred.
    year: Option<i32>,
    month: u32,
}

impl Years {
    /// `first`: the year of the file's first classic stamp, or `None` for the latest year that
    /// does not put that stamp after today (a log is read after it was written, so a December
    /// file read in January is last year's, not eleven months ahead).
    pub fn starting(first: Option<i32>) -> Self {
        Years {
            year: first,
            month: 0,
        }
    }

    /// The year of a stamp in `month` on `day`, given every earlier line of the file. Only a step
    /// back of more than one month from the latest month seen turns the year: a line a little out
    /// of order around a month's end (buffered writers) must not add a year.
    fn of(&mut self, month: u32, day: u32) -> i32 {
        use chrono::Datelike;
        let year = self.year.get_or_insert_with(|| {
            let today = chrono::Utc::now().date_naive();
            today.year() - i32::from((month, day) > (today.month(), today.day()))
        });
        if self.month > 0 && month + 1 < self.month {
            *year += 1;
            self.month = month;
        } else if self.month > 0 && month > self.month + 6 {
            // A step forward of more than half a year is a late line from before the turn (a
            // `Dec 31` flushed after `Jan 1`): it belongs to last year and turns nothing.
            return *year - 1;
        } else {
            self.month = self.month.max(month);
        }
        *year
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// True if `line` looks like syslog (used to recognise the format).
pub fn looks_like(line: &str) -> bool {
    let p = patterns();
    p.header.is_match(line) || p.rfc5424.is_match(line)
}

/// Parses one line; `Err` is the reject reason for a line that is not syslog at all.
pub fn parse(line: &str, years: &mut Years) -> Result<Line, String> {
    let p = patterns();
    let Some(caps) = p.header.captures(line).or_else(|| p.rfc5424.captures(line)) else {
        return match p.loose.is_match(line) {
            true => Ok(Line::Other),
            false => Err("not a syslog line".into()),
        };
    };
    let ts = &caps["ts"];
    let ts = if ts.as_bytes()[0].is_ascii_digit() {
        ts.to_string()
    } else {
        classic_stamp(ts, years)?
    };
    let (Some(prog), Some(msg)) = (caps.name("prog"), caps.name("msg")) else {
        return Ok(Line::Other); // `-- MARK --`, or an RFC 5424 line without a message
    };
    let (prog, msg) = (prog.as_str(), msg.as_str());
    let host = caps["host"].to_string();
    let mut row = RawRow::default();
    row.set(Field::Timestamp, ts);
    row.set(Field::TargetAccount, host);
    match prog {
        "sshd" => {
            if let Some(c) = p.accepted.captures(msg) {
                fill(
                    &mut row,
                    "login",
                    &c["user"],
                    &c["ip"],
                    &format!("sshd:{}", &c["method"]),
                    "success",
                );
            } else if let Some(c) = p.failed.captures(msg) {
                let what = if c.name("invalid").is_some() {
                    "sshd:invalid_user"
                } else {
                    "sshd:failed"
                };
                fill(&mut row, "login", &c["user"], &c["ip"], what, "failure");
            } else if let Some(c) = p.invalid.captures(msg) {
                fill(
                    &mut row,
                    "login",
                    &c["user"],
                    &c["ip"],
                    NOTICE_INVALID_USER,
                    "failure",
                );
            } else if let Some(c) = p.pam_failure.captures(msg) {
                // PAM's view of a failed password: `rhost=` is the client, `user=` the account
                // (absent when PAM does not know it, e.g. an unknown user).
                let user = c.name("user").map_or("", |u| u.as_str());
                fill(
                    &mut row,
                    "login",
                    user,
                    &c["ip"],
                    NOTICE_PAM_FAILURE,
                    "failure",
                );
            } else {
                return Ok(Line::Other);
            }
        }
        "sudo" => {
            let Some(c) = p.sudo.captures(msg) else {
                return Ok(Line::Other);
            };
            row.set(Field::EventType, "sudo");
            row.set(Field::Principal, c["user"].to_string());
            row.set(
                Field::Action,
                format!("sudo {}: {}", &c["target"], c["cmd"].trim()),
            );
        }
        "su" => {
            // A session `by` nobody named (cron, a root shell) is no one's privilege change.
            let Some(c) = p.su.captures(msg).filter(|c| !c["user"].is_empty()) else {
                return Ok(Line::Other);
            };
            row.set(Field::EventType, "su");
            row.set(Field::Principal, c["user"].to_string());
            row.set(Field::Action, format!("su {}", &c["target"]));
        }
        _ => return Ok(Line::Other),
    }
    Ok(Line::Event(Box::new(row)))
}

/// `Mar  3 02:14:07` in the file's current year, as `2025-03-03 02:14:07` (read later as local
/// time). Built from its fields rather than through strftime, which cost a quarter of reading an
/// auth log; the header pattern has already checked the shape, chrono checks the values.
fn classic_stamp(ts: &str, years: &mut Years) -> Result<String, String> {
    let bad = || format!("bad syslog time {ts:?}");
    let month = MONTHS
        .iter()
        .position(|m| ts.starts_with(m))
        .ok_or_else(|| format!("bad syslog month in {ts:?}"))? as u32
        + 1;
    let number = |range: std::ops::Range<usize>| -> Result<u32, String> {
        ts.get(range)
            .and_then(|t| t.trim_start().parse().ok())
            .ok_or_else(bad)
    };
    let (day, hour, minute, second) = (
        number(4..6)?,
        number(7..9)?,
        number(10..12)?,
        number(13..15)?,
    );
    let year = years.of(month, day);
    chrono::NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(hour, minute, second))
        .ok_or_else(bad)?;
    Ok(format!(
        "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}"
    ))
}

fn fill(
    row: &mut RawRow<'static>,
    event: &'static str,
    user: &str,
    ip: &str,
    action: &str,
    outcome: &'static str,
) {
    row.set(Field::EventType, event);
    row.set(Field::Principal, user.to_string());
    row.set(Field::SourceIp, ip.to_string());
    row.set(Field::Action, action.to_string());
    row.set(Field::Outcome, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> RawRow<'static> {
        match parse(line, &mut Years::starting(Some(2025))) {
            Ok(Line::Event(r)) => *r,
            _ => panic!("not an event: {line}"),
        }
    }

    /// `/var/log/messages` as older distributions wrote it: PAM-tagged programs, syslogd's own
    /// restart line and `-- MARK --` are syslog (events or other lines), never rejects.
    #[test]
    fn pam_tagged_programs_restarts_and_marks() {
        let r = event(
            "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4  user=root",
        );
        assert_eq!(
            (
                r.get(Field::Principal),
                r.get(Field::SourceIp),
                r.get(Field::Outcome)
            ),
            (Some("root"), Some("218.188.2.4"), Some("failure"))
        );
        let r = event(
            "Mar  3 10:01:02 web1 sshd[811]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7",
        );
        assert_eq!(
            (r.get(Field::Principal), r.get(Field::SourceIp)),
            (None, Some("198.51.100.7"))
        );
        for other in [
            "Jun 15 04:06:20 combo syslogd 1.4.1: restart.",
            "Jun 15 04:06:20 combo -- MARK --",
            "Jun 15 12:12:34 combo su(pam_unix)[21416]: session opened for user cyrus by (uid=0)",
            "Jun 15 12:12:35 combo su(pam_unix)[21416]: session closed for user cyrus",
            "Jun 14 15:16:02 combo sshd(pam_unix)[19937]: check pass; user unknown",
            // `login`'s tag, in the public Linux sample (loghub `Linux_2k.log`, line 899).
            "Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2",
        ] {
            assert!(
                matches!(
                    parse(other, &mut Years::starting(Some(2025))),
                    Ok(Line::Other)
                ),
                "{other}"
            );
        }
        // Without a stamp and a host it is no syslog line at all.
        for bad in [
            "ROOT LOGIN ON tty2",
            "Jul  7 08:06:15",
            "2025-03-03 web1 sshd[1]: x",
        ] {
            let got = parse(bad, &mut Years::starting(Some(2025)));
            assert!(
                matches!(&got, Err(why) if why == "not a syslog line"),
                "{bad}"
            );
        }
    }

    /// rsyslog's RFC 5424 template, with and without `<PRI>`, structured data and a BOM, reads
    /// like the classic line; a NILVALUE app is another program's line.
    #[test]
    fn rfc5424_lines() {
        for line in [
            "<38>1 2025-03-03T10:01:02.123456+01:00 web1 sshd 811 - - Failed password for invalid user admin from 198.51.100.9 port 4242 ssh2",
            "1 2025-03-03T10:01:02Z web1 sshd 811 - [origin ip=\"10.0.0.1\"][meta x=\"a\\]b\"] \u{feff}Failed password for invalid user admin from 198.51.100.9 port 4242 ssh2",
        ] {
            assert!(looks_like(line), "{line}");
            let r = event(line);
            assert_eq!(
                (
                    r.get(Field::Action),
                    r.get(Field::SourceIp),
                    r.get(Field::TargetAccount)
                ),
                (
                    Some("sshd:invalid_user"),
                    Some("198.51.100.9"),
                    Some("web1")
                ),
                "{line}"
            );
            assert!(
                r.get(Field::Timestamp)
                    .is_some_and(|t| t.starts_with("2025-03-03T10:01:02"))
            );
        }
        assert!(matches!(
            parse(
                "<13>1 2025-03-03T10:01:02Z web1 - - - -",
                &mut Years::starting(None)
            ),
            Ok(Line::Other)
        ));
    }

    /// `su` to another user, old PAM tag and current form: the one who switched is the principal.
    #[test]
    fn su_sessions_name_who_switched() {
        for line in [
            "Jun 15 12:12:34 combo su(pam_unix)[21416]: session opened for user root by alice(uid=500)",
            "Mar  3 10:01:02 web1 su[811]: pam_unix(su-l:session): session opened for user root(uid=0) by alice(uid=1000)",
        ] {
            let r = event(line);
            assert_eq!(
                (
                    r.get(Field::EventType),
                    r.get(Field::Principal),
                    r.get(Field::Action)
                ),
                (Some("su"), Some("alice"), Some("su root")),
                "{line}"
            );
        }
    }

    #[test]
    fn sshd_and_sudo_lines() {
        let r = event(
            "Mar  3 10:01:02 web1 sshd[811]: Accepted publickey for alice from 203.0.113.5 port 50022 ssh2",
        );
        assert_eq!(r.get(Field::Timestamp), Some("2025-03-03 10:01:02"));
        assert_eq!(r.get(Field::Principal), Some("alice"));
        assert_eq!(r.get(Field::Outcome), Some("success"));
        let r = event(
            "Mar  3 10:01:02 web1 sshd[811]: Failed password for invalid user admin from 198.51.100.9 port 4242 ssh2",
        );
        assert_eq!(r.get(Field::Action), Some("sshd:invalid_user"));
        let r = event(
            "2025-03-03T10:01:02.5+00:00 web1 sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/cat /etc/shadow",
        );
        assert_eq!(r.get(Field::EventType), Some("sudo"));
        assert!(matches!(
            parse(
                "Mar  3 10:01:02 web1 CRON[1]: session opened",
                &mut Years::starting(Some(2025))
            ),
            Ok(Line::Other)
        ));
        assert!(parse("garbage", &mut Years::starting(Some(2025))).is_err());
    }

    /// A log that runs over New Year files January in the next year; a line slightly out of order
    /// at a month's end does not.
    #[test]
    fn year_turns_when_the_month_goes_back() {
        let mut years = Years::starting(Some(2025));
        let stamps: Vec<String> = [
            "Nov 30 23:59:59",
            "Dec  1 00:00:01",
            "Nov 30 23:59:58",
            "Dec 31 23:59:59",
            "Jan  1 00:00:00",
            "Dec 31 23:59:58",
            "Jan  1 00:00:02",
            "Mar  3 10:00:00",
        ]
        .iter()
        .map(|ts| {
            let line =
                format!("{ts} web1 sshd[1]: Accepted publickey for a from 192.0.2.1 port 1 ssh2");
            match parse(&line, &mut years) {
                Ok(Line::Event(r)) => r.get(Field::Timestamp).unwrap_or_default().to_string(),
                _ => panic!("not an event: {line}"),
            }
        })
        .collect();
        assert_eq!(
            stamps,
            [
                "2025-11-30 23:59:59",
                "2025-12-01 00:00:01",
                "2025-11-30 23:59:58",
                "2025-12-31 23:59:59",
                "2026-01-01 00:00:00",
                "2025-12-31 23:59:58",
                "2026-01-01 00:00:02",
                "2026-03-03 10:00:00",
            ]
        );
    }

    /// Without `--syslog-year`, a stamp is placed in the latest year that keeps it in the past:
    /// yesterday's date is this year's, tomorrow's is last year's (around New Year the two fall
    /// in different years, so those cases are left out).
    #[test]
    fn inferred_year_never_puts_a_stamp_in_the_future() {
        use chrono::Datelike;
        let today = chrono::Utc::now().date_naive();
        let yesterday = today - chrono::Days::new(1);
        if yesterday.year() == today.year() {
            let got = Years::starting(None).of(yesterday.month(), yesterday.day());
            assert_eq!(got, today.year(), "{yesterday}");
        }
        let tomorrow = today + chrono::Days::new(1);
        if tomorrow.year() == today.year() {
            let got = Years::starting(None).of(tomorrow.month(), tomorrow.day());
            assert_eq!(got, today.year() - 1, "{tomorrow}");
        }
    }
}
