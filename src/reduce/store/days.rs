//! The day sets ([`DaySets`]) of records in a state: `days.parquet`, one row per local day,
//! `day`, `accounts` (every account the day's access rows named) and `self_served` (principals
//! that read their own account that day), bitmaps in roaring's portable format.

use std::path::Path;

use super::{Stored, bitmap, bitmap_bytes, broken, column, need, set_within, table};
use crate::error::Result;
use crate::reduce::days::{DaySet, DaySets};

/// The file's name.
pub const DAYS: &str = "days.parquet";

/// Writes `sets` into `dir`; the bytes written.
pub fn write_days(dir: &Path, sets: &DaySets) -> Result<u64> {
    let blobs = |f: fn(&DaySet) -> &roaring::RoaringBitmap| {
        (sets.0.values())
            .map(|s| Some(bitmap_bytes(f(s))))
            .collect::<Vec<_>>()
    };
    table(
        &dir.join(DAYS),
        vec![
            column("day", sets.0.keys().copied()),
            column("accounts", blobs(|s| &s.accounts)),
            column("self_served", blobs(|s| &s.self_served)),
        ],
    )
}

/// What [`write_days`] wrote, every code checked against a table of `symbols` names.
pub fn read_days(dir: &Path, symbols: u64) -> Result<DaySets> {
    let t = Stored::load(dir.join(DAYS))?;
    let (day, accounts) = (t.i64s("day")?, t.blobs("accounts")?);
    let served = t.blobs("self_served")?;
    let mut sets = DaySets::default();
    for i in 0..t.df.height() {
        let set = DaySet {
            accounts: bitmap(&t.path, need(&t.path, accounts.get(i))?)?,
            self_served: bitmap(&t.path, need(&t.path, served.get(i))?)?,
        };
        if !set_within(&set.accounts, symbols) || !set_within(&set.self_served, symbols) {
            return Err(broken(&t.path, "a code beyond the symbol table"));
        }
        if sets.0.insert(need(&t.path, day.get(i))?, set).is_some() {
            return Err(broken(&t.path, "a day is listed twice"));
        }
    }
    Ok(sets)
}
