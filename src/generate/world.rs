//! The synthetic company: employees, keys, customers, and what each of them does on a given day.

use std::path::Path;

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{Config, Truth, Variant};
use crate::error::{Error, Result};
use crate::normalize::schema::DAY_MS;

/// 2025-03-01T00:00:00Z: the export's first day.
const START_MS: i64 = 1_740_787_200_000;
const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;
const DEPARTMENTS: [&str; 5] = ["engineering", "support", "it-admin", "sales", "finance"];
const FIRST: [&str; 8] = [
    "Min-jun", "Seo-yeon", "Ji-ho", "Ha-eun", "Do-yun", "Su-ah", "Ye-jin", "Joon",
];
const LAST: [&str; 6] = ["Kim", "Lee", "Park", "Choi", "Jung", "Kang"];
const MOBILE_UA: &str = "ShopApp/7.4.1 (iPhone; iOS 18.1)";
const WEB_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0";
const NIGHTLY_SOURCE: &str = "10.0.5.10";
const ATTACK_UA: &str = "ShopApp/7.4.0 (iPhone; iOS 18.0)";
/// The scraper variant: a current IT admin's reporting key.
const SCRAPER: &str = "E1013";
const SCRAPER_KEY: &str = "ak-E1013-reporting";
const SCRAPE_DAYS: u32 = 28;
/// The quiet forger variant: the issuer's current key, from one outside address.
const FORGED_KEY: &str = "kid-2025b";
const FORGER_IP: &str = "198.51.100.23";

/// Which exported log an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    Gateway,
    Issuance,
    Sso,
}

/// One generated event (the generator's own type; it is written in the canonical formats).
#[derive(Debug, Clone)]
pub struct GenEvent {
    pub log: Log,
    pub ts: i64,
    pub event_type: &'static str,
    pub principal: String,
    pub credential: Option<String>,
    pub token: Option<String>,
    pub source_ip: String,
    pub user_agent: &'static str,
    pub action: &'static str,
    pub target: Option<String>,
    pub success: bool,
    pub records: Option<u32>,
}

pub struct World {
    variant: Variant,
    days: u32,
    customers: u32,
    employees: Vec<(String, String, &'static str, Option<u32>)>,
    nightly_set: Vec<u32>,
    depart_day: u32,
    abuse_start: u32,
    rotation_day: u32,
    gap_day: u32,
    burst_day: u32,
    walk_start: u32,
}

pub fn customer(i: u32) -> String {
    format!("C{i:08}")
}

fn customer_ip(i: u32) -> String {
    format!(
        "100.{}.{}.{}",
        64 + ((i >> 16) & 63),
        (i >> 8) & 255,
        i & 255
    )
}

fn employee_ip(i: usize) -> String {
    format!("10.20.{}.{}", i / 200, i % 200 + 10)
}

fn attacker_ips() -> Vec<String> {
    (0..6)
        .map(|i| format!("203.0.113.{}", 40 + i * 7))
        .collect()
}

fn date(day: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(START_MS + day * DAY_MS)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn token(rng: &mut ChaCha8Rng) -> String {
    format!("tk-{:016x}", rng.random::<u64>())
}

impl World {
    pub fn new(cfg: &Config, rng: &mut ChaCha8Rng) -> World {
        let d = cfg.days;
        let depart_day = d / 5;
        let mut employees = Vec::new();
        for i in 0..cfg.employees as usize {
            let id = format!("E{}", 1001 + i);
            let name = format!(
                "{} {}",
                FIRST[i % FIRST.len()],
                LAST[(i / FIRST.len()) % LAST.len()]
            );
            let dept = match i {
                0 => "engineering",
                1 => "sales",
                2 => "finance",
                3 | 10 => "support",
                _ => DEPARTMENTS[i % DEPARTMENTS.len()],
            };
            // E1001 custodian, E1002 old failing device, E1003 active on last day, E1004 notice period.
            let left = match i {
                0 => Some(depart_day),
                1 => Some(d / 7),
                2 => Some(d / 4),
                3 => Some(d + 30),
                5 | 6 => Some(d / 3 + i as u32),
                _ => None,
            };
            employees.push((id, name, dept, left));
        }
        let mut all: Vec<u32> = (0..cfg.customers).collect();
        all.shuffle(rng);
        let nightly_set = all[..(cfg.customers as usize * 15 / 100)].to_vec();
        World {
            variant: cfg.variant,
            days: d,
            customers: cfg.customers,
            employees,
            nightly_set,
            depart_day,
            abuse_start: d / 2,
            rotation_day: d * 2 / 5,
            gap_day: d * 2 / 3,
            burst_day: d * 4 / 5,
            walk_start: rng.random_range(0..cfg.customers),
        }
    }

    pub fn truth(&self) -> Truth {
        let planted = match self.variant {
            Variant::KeptKey => vec!["kid-legacy-2023".into(), "203.0.113.0/24".into()],
            Variant::Scraper => vec![SCRAPER_KEY.into(), SCRAPER.into()],
            Variant::QuietForger => vec![FORGED_KEY.into(), FORGER_IP.into()],
        };
        Truth {
            variant: self.variant.name().into(),
            planted,
            abused_key: "kid-legacy-2023".into(),
            custodian: "E1001".into(),
            custodian_left: date(self.depart_day as i64),
            abuse_start_day: self.abuse_start,
            abuse_start: date(self.abuse_start as i64),
            attacker_ips: attacker_ips(),
            attacker_network: "203.0.113.0/24".into(),
            burst_principal: "E1011".into(),
            burst_day: self.burst_day,
            nightly_key: "ak-billing-nightly".into(),
            nightly_principal: "svc-billing".into(),
            nightly_source: NIGHTLY_SOURCE.into(),
            rotated_key: "kid-2024a".into(),
            failing_principal: "E1002".into(),
            notice_principal: "E1004".into(),
            last_day_principal: "E1003".into(),
            issuer_gap_day: self.gap_day,
            start: date(0),
            days: self.days,
            events: 0,
        }
    }

    pub fn write_context(&self, dir: &Path) -> Result<()> {
        let mut roster = String::from("employee_id,name,department,hire_date,termination_date\n");
        for (id, name, dept, left) in &self.employees {
            let term = left.map(|l| date(l as i64)).unwrap_or_default();
            roster.push_str(&format!("{id},{name},{dept},2021-04-01,{term}\n"));
        }
        let rotation = date(self.rotation_day as i64);
        let successor = date(self.rotation_day as i64 - 2);
        let credentials = format!(
            "credential_id,owner,kind,created,revoked\n\
             kid-legacy-2023,E1001,signing_key,2023-01-10,\n\
             kid-2024a,E1020,signing_key,2024-06-01,{rotation}\n\
             kid-2025b,E1020,signing_key,{successor},\n\
             ak-billing-nightly,svc-billing,api_key,2024-01-15,\n\
             dev-E1002-laptop,E1002,device_cert,2023-05-02,{}\n\
             {SCRAPER_KEY},{SCRAPER},api_key,2024-09-01,\n",
            date(self.employees[1].3.unwrap_or(0) as i64)
        );
        for (name, text) in [("roster.csv", roster), ("credentials.csv", credentials)] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }

    /// The signing key the issuer uses on `day` (rotation happens at the end of `rotation_day`).
    fn issuing_key(&self, day: u32) -> &'static str {
        if day <= self.rotation_day {
            "kid-2024a"
        } else {
            "kid-2025b"
        }
    }

    /// All events of one day, shuffled (exports are not sorted).
    pub fn day(&self, day: u32, rng: &mut ChaCha8Rng) -> Vec<GenEvent> {
        let base = START_MS + day as i64 * DAY_MS;
        let mut out = Vec::new();
        self.customers_day(day, base, rng, &mut out);
        self.employees_day(day, base, rng, &mut out);
        self.nightly_job(base, rng, &mut out);
        match self.variant {
            Variant::KeptKey if day >= self.abuse_start => {
                self.attacker_day(day, base, rng, &mut out);
            }
            Variant::Scraper if day + SCRAPE_DAYS >= self.days => {
                self.scraper_day(day, base, rng, &mut out);
            }
            Variant::QuietForger if (self.abuse_start..self.abuse_start + 21).contains(&day) => {
                self.forger_day(day, base, rng, &mut out);
            }
            _ => {}
        }
        out.shuffle(rng);
        out
    }

    fn customers_day(&self, day: u32, base: i64, rng: &mut ChaCha8Rng, out: &mut Vec<GenEvent>) {
        let active = (self.customers as f64 * 0.08) as u32;
        for _ in 0..active {
            let c = rng.random_range(0..self.customers);
            let at = base + rng.random_range(0..DAY_MS - 2 * HOUR);
            let (who, ip) = (customer(c), customer_ip(c));
            // Sessions in the first half hour of the export use tokens issued before it began.
            let pre_export = day == 0 && at - base < 30 * MINUTE;
            // Around the rotation a token minted just before midnight is used after it.
            let kid = self.issuing_key(day);
            let tok = token(rng);
            let ev =
                |log, ts, et, action, target: Option<String>, token: Option<String>| GenEvent {
                    log,
                    ts,
                    event_type: et,
                    principal: who.clone(),
                    credential: Some(kid.to_string()),
                    token,
                    source_ip: ip.clone(),
                    user_agent: MOBILE_UA,
                    action,
                    target,
                    success: true,
                    records: None,
                };
            if !pre_export {
                let mut login = ev(Log::Sso, at, "login", "password", None, None);
                login.credential = None;
                out.push(login);
                if day != self.gap_day {
                    out.push(ev(
                        Log::Issuance,
                        at + 500,
                        "token_issued",
                        "issue",
                        None,
                        Some(tok.clone()),
                    ));
                }
            }
            for k in 0..rng.random_range(1..4) {
                let mut a = ev(
                    Log::Gateway,
                    at + (k + 1) * 7 * MINUTE,
                    "access",
                    "GET /v1/orders",
                    Some(who.clone()),
                    Some(tok.clone()),
                );
                a.records = Some(rng.random_range(1..20));
                out.push(a);
            }
        }
        if day == self.rotation_day {
            // Tokens signed by the old key at 23:50 are still presented after midnight (grace).
            for i in 0..20 {
                let c = rng.random_range(0..self.customers);
                let at = base + DAY_MS - 10 * MINUTE + i * 20_000;
                let tok = token(rng);
                let mk = |log, ts, et, target: Option<String>| GenEvent {
                    log,
                    ts,
                    event_type: et,
                    principal: customer(c),
                    credential: Some("kid-2024a".into()),
                    token: Some(tok.clone()),
                    source_ip: customer_ip(c),
                    user_agent: MOBILE_UA,
                    action: "GET /v1/orders",
                    target,
                    success: true,
                    records: Some(3),
                };
                out.push(mk(Log::Issuance, at, "token_issued", None));
                out.push(mk(
                    Log::Gateway,
                    at + 40 * MINUTE,
                    "access",
                    Some(customer(c)),
                ));
            }
        }
    }

    fn employees_day(&self, day: u32, base: i64, rng: &mut ChaCha8Rng, out: &mut Vec<GenEvent>) {
        for (i, (id, _, dept, left)) in self.employees.iter().enumerate() {
            let gone = left.is_some_and(|l| day > l);
            if i == 1 && gone && day <= left.unwrap_or(0) + 25 {
                // A departed person's old laptop keeps retrying its cached credential.
                for k in 0..3 {
                    out.push(self.emp_event(
                        id,
                        base + (8 + k * 4) * HOUR,
                        "login",
                        "198.51.100.77",
                        Some("dev-E1002-laptop"),
                        None,
                        false,
                        "vpn",
                    ));
                }
            }
            if gone {
                continue;
            }
            let ip = employee_ip(i);
            let t0 = base + 8 * HOUR + rng.random_range(0..2 * HOUR);
            out.push(self.emp_event(
                id,
                t0,
                "login",
                &ip,
                None,
                None,
                rng.random_bool(0.97),
                "sso",
            ));
            match *dept {
                "support" => {
                    let night = i == 10 && day == self.burst_day;
                    // The burst looks up distinct accounts; a normal day draws at random.
                    let picks: Vec<u32> = if night {
                        let n = 6000.min(self.customers * 3 / 5) as usize;
                        rand::seq::index::sample(rng, self.customers as usize, n)
                            .into_iter()
                            .map(|c| c as u32)
                            .collect()
                    } else {
                        let n = rng.random_range(20..40);
                        (0..n)
                            .map(|_| rng.random_range(0..self.customers))
                            .collect()
                    };
                    for (k, c) in picks.into_iter().enumerate() {
                        let ts = if night {
                            base + 2 * HOUR + k as i64 * 1_500
                        } else {
                            t0 + rng.random_range(0..8 * HOUR)
                        };
                        out.push(self.emp_event(
                            id,
                            ts,
                            "access",
                            &ip,
                            None,
                            Some(customer(c)),
                            true,
                            "GET /crm/customer",
                        ));
                    }
                }
                "it-admin" => {
                    for _ in 0..rng.random_range(20..60) {
                        let host = format!("host-{:03}", rng.random_range(0..400));
                        let ts = t0 + rng.random_range(0..8 * HOUR);
                        out.push(self.emp_event(
                            id,
                            ts,
                            "login",
                            &ip,
                            None,
                            Some(host),
                            true,
                            "ssh",
                        ));
                    }
                }
                _ => {}
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emp_event(
        &self,
        id: &str,
        ts: i64,
        et: &'static str,
        ip: &str,
        cred: Option<&str>,
        target: Option<String>,
        ok: bool,
        action: &'static str,
    ) -> GenEvent {
        GenEvent {
            log: if et == "access" {
                Log::Gateway
            } else {
                Log::Sso
            },
            ts,
            event_type: et,
            principal: id.to_string(),
            credential: cred.map(String::from),
            token: None,
            source_ip: ip.to_string(),
            user_agent: WEB_UA,
            action,
            target,
            success: ok,
            records: None,
        }
    }

    /// The billing job touches the same 15% of customers every night.
    fn nightly_job(&self, base: i64, rng: &mut ChaCha8Rng, out: &mut Vec<GenEvent>) {
        for (k, c) in self.nightly_set.iter().enumerate() {
            out.push(GenEvent {
                log: Log::Gateway,
                ts: base + HOUR + k as i64 * 200 + rng.random_range(0..200),
                event_type: "access",
                principal: "svc-billing".into(),
                credential: Some("ak-billing-nightly".into()),
                token: None,
                source_ip: NIGHTLY_SOURCE.into(),
                user_agent: "billing-reconciler/2.3",
                action: "POST /internal/billing/reconcile",
                target: Some(customer(*c)),
                success: true,
                records: Some(1),
            });
        }
    }

    /// 2 % of the customers a day, never the same twice, in random order, through the API key
    /// of a current employee from the employee's desk, during working hours.
    fn scraper_day(&self, day: u32, base: i64, rng: &mut ChaCha8Rng, out: &mut Vec<GenEvent>) {
        let per_day = (self.customers / 50).max(10);
        let first = self.days.saturating_sub(SCRAPE_DAYS);
        let offset = (day - first) * per_day;
        let ip = employee_ip(12);
        for k in 0..per_day {
            // A multiplicative hash of the running index: every account once, in no order.
            let n = (offset + k) as u64;
            let c = ((n * 2_654_435_761 + u64::from(self.walk_start)) % u64::from(self.customers))
                as u32;
            out.push(GenEvent {
                log: Log::Gateway,
                ts: base + 9 * HOUR + rng.random_range(0..8 * HOUR),
                event_type: "access",
                principal: SCRAPER.into(),
                credential: Some(SCRAPER_KEY.into()),
                token: None,
                source_ip: ip.clone(),
                user_agent: "python-requests/2.31.0",
                action: "GET /v1/account/addresses",
                target: Some(customer(c)),
                success: true,
                records: Some(1),
            });
        }
    }

    /// 20–40 accesses a day with tokens under the issuer's current key that the issuer never
    /// issued, each for a random victim (subject = victim), from one outside address.
    fn forger_day(&self, day: u32, base: i64, rng: &mut ChaCha8Rng, out: &mut Vec<GenEvent>) {
        for _ in 0..rng.random_range(20..=40) {
            let c = rng.random_range(0..self.customers);
            out.push(GenEvent {
                log: Log::Gateway,
                ts: base + rng.random_range(0..DAY_MS - HOUR),
                event_type: "access",
                principal: customer(c),
                credential: Some(self.issuing_key(day).into()),
                token: Some(token(rng)),
                source_ip: FORGER_IP.into(),
                user_agent: MOBILE_UA,
                action: "GET /v1/account/addresses",
                target: Some(customer(c)),
                success: true,
                records: Some(1),
            });
        }
    }

    /// Low and slow: ~1% of customers a day, walking account ids upward, one minted token each,
    /// subject = victim, from a handful of rotating addresses, spread over the whole day.
    fn attacker_day(&self, day: u32, base: i64, rng: &mut ChaCha8Rng, out: &mut Vec<GenEvent>) {
        let per_day = (self.customers / 100).max(5);
        let ips = attacker_ips();
        let offset = (day - self.abuse_start) * per_day;
        let per_day = per_day * rng.random_range(70..130) / 100;
        for k in 0..per_day {
            let c = (self.walk_start + offset + k) % self.customers;
            let ts =
                base + (k as i64 * (DAY_MS - HOUR)) / per_day as i64 + rng.random_range(0..MINUTE);
            let tok = token(rng);
            for action in ["GET /v1/account/profile", "GET /v1/account/addresses"] {
                out.push(GenEvent {
                    log: Log::Gateway,
                    ts: ts
                        + if action.ends_with("addresses") {
                            2_000
                        } else {
                            0
                        },
                    event_type: "access",
                    principal: customer(c),
                    credential: Some("kid-legacy-2023".into()),
                    token: Some(tok.clone()),
                    source_ip: ips[(day as usize + k as usize / 7) % ips.len()].clone(),
                    user_agent: ATTACK_UA,
                    action,
                    target: Some(customer(c)),
                    success: true,
                    records: Some(1),
                });
            }
        }
    }
}
