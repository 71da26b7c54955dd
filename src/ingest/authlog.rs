//! Linux authentication logs (`/var/log/auth.log`, `/var/log/secure`): sshd logins and sudo.
//! Classic syslog omits the year and the zone, so both come from the run (`--syslog-year`,
//! `--timezone`); RFC 3339 syslog stamps (rsyslog's high-precision format) carry their own.

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
    accepted: Regex,
    failed: Regex,
    invalid: Regex,
    sudo: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        header: Regex::new(
            r"^(?P<ts>[A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T\S+) (?P<host>\S+) (?P<prog>[\w.-]+)(?:\[\d+\])?: (?P<msg>.*)$",
        )
        .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        accepted: Regex::new(r"^Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<ip>\S+) port \d+")
            .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        failed: Regex::new(r"^Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>\S+) from (?P<ip>\S+) port \d+")
            .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        invalid: Regex::new(r"^Invalid user (?P<user>\S*) from (?P<ip>\S+)")
            .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
        sudo: Regex::new(r"^\s*(?P<user>\S+) : .*USER=(?P<target>\S+) ; COMMAND=(?P<cmd>.*)$")
            .unwrap_or_else(|e| unreachable!("static pattern: {e}")),
    })
}

/// True if `line` looks like syslog (used to recognise the format).
pub fn looks_like(line: &str) -> bool {
    patterns().header.is_match(line)
}

/// Parses one line; `Err` is the reject reason for a line that is not syslog at all.
pub fn parse(line: &str, year: i32) -> Result<Line, String> {
    let p = patterns();
    let caps = p.header.captures(line).ok_or("not a syslog line")?;
    let ts = &caps["ts"];
    let ts = if ts.as_bytes()[0].is_ascii_digit() {
        ts.to_string()
    } else {
        let naive =
            chrono::NaiveDateTime::parse_from_str(&format!("{year} {ts}"), "%Y %b %e %H:%M:%S")
                .map_err(|e| format!("bad syslog time {ts:?}: {e}"))?;
        naive.format("%Y-%m-%d %H:%M:%S").to_string()
    };
    let host = caps["host"].to_string();
    let prog = &caps["prog"];
    let msg = &caps["msg"];
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
                    "sshd:invalid_user",
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
        _ => return Ok(Line::Other),
    }
    Ok(Line::Event(Box::new(row)))
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
        match parse(line, 2025) {
            Ok(Line::Event(r)) => *r,
            _ => panic!("not an event: {line}"),
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
            parse("Mar  3 10:01:02 web1 CRON[1]: session opened", 2025),
            Ok(Line::Other)
        ));
        assert!(parse("garbage", 2025).is_err());
    }
}
