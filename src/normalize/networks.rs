//! The /24 or /64 of each address, derived where read rather than stored in the event frame: 4
//! bytes an event (0.34 GB at 85.9M events) for what a few million distinct addresses
//! determine. Each address is parsed once in a run; passes that look for a few flagged
//! networks' rows look their addresses up instead ([`lookup`]).

use std::borrow::Cow;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use polars::prelude::*;
use rayon::prelude::*;

use super::columns::network_of;
use crate::error::{FrameContext, Result};
use crate::frame::{CodeArray, CodeTable, Codes, Dictionary, NULL, code_arrays, dictionary};
use crate::normalize::ColdColumns;

/// The network code of each address code asked about so far, by address code ([`NULL`]: no
/// network, an internal address or not an address): the run's dictionary lives as long as the
/// process, and so does what is learned of its addresses. Readers take the current table and let
/// go of the lock before any parallel work: a rayon worker waiting inside a parallel loop may run
/// another task that wants to add addresses, which must never wait on a lock that worker holds.
/// New addresses replace the table.
static NETWORKS: LazyLock<Mutex<Arc<Vec<Option<u32>>>>> = LazyLock::new(Mutex::default);

/// The dictionary and what is learned of its addresses.
fn networks() -> (&'static Dictionary, Arc<Vec<Option<u32>>>) {
    let learned = NETWORKS.lock().unwrap_or_else(PoisonError::into_inner);
    (dictionary(), learned.clone())
}

/// Turns address codes into the code of their /24 or /64 ([`NULL`] for none), in place: derived
/// rather than stored in the frame, 4 bytes an event (0.34 GB at 85.9M events) for what a few
/// million distinct addresses determine. Each address is parsed once in a run.
pub fn to_networks(codes: &mut [u32]) -> Result<()> {
    learn_networks(&[&codes[..]])?;
    let (_, table) = networks();
    codes
        .par_iter_mut()
        .for_each(|ip| *ip = network_of_code(&table, *ip));
    Ok(())
}

fn network_of_code(table: &[Option<u32>], ip: u32) -> u32 {
    table.get(ip as usize).copied().flatten().unwrap_or(NULL)
}

/// Parses the addresses among `ips` not seen before and places their networks in the dictionary
/// (the same string always gets the same code, so two threads learning one address agree).
/// Once for all of a frame's chunks: each call that learns something copies the table.
fn learn_networks(chunks: &[&[u32]]) -> Result<()> {
    let all =
        || (chunks.par_iter()).flat_map_iter(|ips| ips.iter().copied().filter(|&ip| ip != NULL));
    learn_unseen(|bound| distinct(all, bound))
}

/// [`learn_networks`] over a code column's arrays, read in place (nulls skipped).
fn learn_arrays(arrays: &[Codes]) -> Result<()> {
    let all = || {
        (arrays.par_iter())
            .flat_map_iter(|arr| (0..arr.len()).map(|i| arr.at(i)).filter(|&ip| ip != NULL))
    };
    learn_unseen(|bound| distinct(all, bound))
}

/// Learns the addresses among `distinct_below(bound)` (the distinct codes, all below `bound`)
/// that no earlier call learned. Asked of each distinct address rather than of each row: the
/// table of what is learned is 8 bytes a code (24 MB at 85.9M events), the set of distinct codes
/// a bit, so a row costs a load from cache instead of one from memory. Over the 85.9M-event
/// state a night's first lookup of a flagged network (1.49M addresses, in enumeration) took
/// 1.53 s, looked up once a row and parsed one by one ([`learn`]), and now 0.32 s; the charts'
/// later one, which learns nothing, 0.32 → 0.12 s (forty-sixth session, one run each).
fn learn_unseen(distinct_below: impl FnOnce(usize) -> Vec<u32>) -> Result<()> {
    let (dict, known) = networks();
    let codes = distinct_below(dict.len());
    let new = (codes.into_iter())
        .filter(|&ip| known.get(ip as usize).is_none_or(Option::is_none))
        .collect();
    learn(dict, new)
}

/// The distinct codes of `codes()`, in order: marked in a bit set as large as `bound` (the
/// dictionary's code count: every code a frame holds is below it), read back in order. Sets per
/// task, merged, took about 25 s more CPU in one run at 85.9M events (each task's set held most
/// addresses). Every code collected whole and sorted, the lookup of a few flagged networks took
/// 1.5 s of a nightly run over that state, which had learned no address before (records read
/// from the state derive none); with the bit set, enumeration took 4.72 → 3.54 s
/// (`docs/performance.md`, twenty-third session). A bit is read before it is set, so an address
/// seen again costs a load. The set was sized by a first pass for the greatest code: one pass
/// over the 85.9M rows' addresses of two (`docs/performance.md`, forty-sixth session). A code
/// past `bound` (none from the dictionary) makes it size the set by that pass after all.
fn distinct<I: ParallelIterator<Item = u32>>(codes: impl Fn() -> I, bound: usize) -> Vec<u32> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    let words: Vec<AtomicU64> = (0..bound.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
    let past = AtomicBool::new(false);
    codes().for_each(|c| {
        let bit = 1u64 << (c % 64);
        match words.get(c as usize / 64) {
            Some(word) if word.load(Relaxed) & bit == 0 => {
                word.fetch_or(bit, Relaxed);
            }
            Some(_) => {}
            None => past.store(true, Relaxed),
        }
    });
    if past.load(Relaxed) {
        let max = codes().max().map_or(0, |m| m as usize + 1);
        return distinct(codes, max.max(bound + 1));
    }
    (words.iter().zip(0u32..))
        .flat_map(|(word, w)| {
            let mut bits = word.load(Relaxed);
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    w * 64 + b
                })
            })
        })
        .collect()
}

/// Addresses parsed side by side before their networks are placed ([`learn`]).
const PARSED_AT_ONCE: usize = 1 << 16;

/// Places the networks of addresses `new` (distinct) of dictionary `dict`, held until the end so
/// that their codes and those placed here stay its own. The addresses are parsed side by side
/// (see [`learn_unseen`] for what it saved), and their networks placed in address order, so
/// that each network gets the code it got when they were parsed one by one.
fn learn(dict: &Dictionary, new: Vec<u32>) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    let mut found = Vec::with_capacity(new.len());
    // A slice at a time, so that the parsed networks waiting to be placed stay a few MB.
    for part in new.chunks(PARSED_AT_ONCE) {
        let networks: Vec<Option<String>> = (part.par_iter())
            .map(|&ip| dict.name(ip).and_then(network_of))
            .collect();
        let named: Vec<&str> = networks.iter().flatten().map(String::as_str).collect();
        let mut codes = (dict.insert_all(&named).stage("coding networks")?).into_iter();
        for (&ip, net) in part.iter().zip(&networks) {
            let code = net.as_ref().and_then(|_| codes.next()).unwrap_or(NULL);
            found.push((ip, code));
        }
    }
    let mut learned = NETWORKS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut next = Vec::clone(&learned);
    for (ip, code) in found {
        if next.len() <= ip as usize {
            next.resize(ip as usize + 1, None);
        }
        next[ip as usize] = Some(code);
    }
    *learned = Arc::new(next);
    Ok(())
}

/// What a pass that looks for the rows of a few entities reads: the column, and a table from its
/// codes to `wanted`'s values (pairs of the entity's name and a value; [`NULL`] elsewhere). A
/// network's rows are found by their addresses when the frame stores no network: deriving the
/// network of every row took 2–3 s a pass at 85.9M events, for a handful of flagged networks.
/// Names, not codes, are asked for: a network has a code only once the addresses are learned,
/// which no earlier pass may have done (records read from a state derive none). Where the
/// addresses wait beside the frame, those ingest saw are learned ([`ColdColumns::addresses`])
/// rather than the column read back.
pub fn lookup<'a>(
    events: &DataFrame,
    cold: &ColdColumns,
    column: &'a str,
    wanted: &[(&str, u32)],
) -> Result<(&'a str, CodeTable<u32>)> {
    use crate::normalize::schema::col::{NETWORK, SOURCE_IP};
    let dense = |pairs: Vec<(u32, u32)>| CodeTable::new(pairs, |_, last| last);
    let derived = column == NETWORK && events.column(NETWORK).is_err();
    if derived {
        match (events.column(SOURCE_IP).is_ok(), cold.addresses()) {
            (true, _) => learn_arrays(&code_arrays(events, SOURCE_IP)?)?,
            (false, Some(seen)) => learn_networks(&[&seen.iter().collect::<Vec<u32>>()])?,
            (false, None) => {
                return Err(crate::error::Error::Internal(
                    "the source addresses are neither in the frame nor listed beside it".into(),
                ));
            }
        }
    }
    let dict = dictionary();
    let codes: Vec<(u32, u32)> = (wanted.iter())
        .filter_map(|&(name, value)| Some((dict.code(name)?, value)))
        .collect();
    if !derived {
        return Ok((column, dense(codes)));
    }
    let by_network: hashbrown::HashMap<u32, u32> = codes.into_iter().collect();
    let (_, table) = networks();
    let pairs = (table.iter().zip(0u32..))
        .filter_map(|(net, ip)| Some((ip, *by_network.get(&(*net)?)?)))
        .collect();
    Ok((SOURCE_IP, dense(pairs)))
}

/// `events` with its name columns as text, and with a network column of its addresses' networks
/// as text, each derived from the address's own text ([`network_of`]), when the query asks of a
/// network (`needed`): for the polars queries the passes over the frame replaced, kept as their
/// references (`detect::usage`, `detect::reach`, `report::series`), which group and filter by
/// name.
#[doc(hidden)]
pub fn names_as_text(events: &DataFrame, needed: bool) -> Result<DataFrame> {
    use crate::normalize::schema::col::{NETWORK, SOURCE_IP};
    let mut out = events.clone();
    for name in crate::frame::NAME_COLUMNS {
        if let Ok(column) = events.column(name)
            && column.dtype() == &DataType::UInt32
        {
            let text = Column::new(name.into(), crate::frame::texts(column)?);
            out.with_column(text).stage("names as text")?;
        }
    }
    if !needed {
        return Ok(out);
    }
    let networks: Vec<Option<String>> = (crate::frame::strs(events, SOURCE_IP)?.iter())
        .map(|ip| network_of(ip))
        .collect();
    (out.with_column(Column::new(NETWORK.into(), networks))).stage("networks of the addresses")?;
    Ok(out)
}

/// The network column of a frame's addresses (see [`to_networks`]), in the address column's
/// chunks.
pub fn network_column(df: &DataFrame) -> Result<Column> {
    use crate::normalize::schema::col::{NETWORK, SOURCE_IP};
    let arrays = code_arrays(df, SOURCE_IP)?;
    learn_arrays(&arrays)?;
    let chunks: Vec<Cow<'_, [u32]>> = arrays.into_par_iter().map(|a| a.values()).collect();
    let (_, table) = networks();
    let arrays: Vec<CodeArray> = chunks
        .par_iter()
        .map(|ips| {
            ips.iter()
                .map(|&ip| Some(network_of_code(&table, ip)).filter(|&n| n != NULL))
                .collect()
        })
        .collect();
    let codes = UInt32Chunked::from_chunk_iter(NETWORK.into(), arrays);
    Ok(codes.into_column())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses learned side by side, from inside a parallel loop, as the detectors do: every
    /// task gets the network `network_of` gives, the same code for the same network.
    #[test]
    fn networks_learned_side_by_side_agree() {
        let dict = dictionary();
        let ip = |i: u32| format!("198.51.{}.{}", i % 40, i % 250);
        let code = |s: &str| dict.insert(s).expect("placed");
        let got: Vec<Vec<u32>> = (0..64u32)
            .into_par_iter()
            .map(|t| {
                let mut codes: Vec<u32> = (t * 50..t * 50 + 400).map(|i| code(&ip(i))).collect();
                codes.push(code("10.1.2.3"));
                codes.push(NULL);
                to_networks(&mut codes).expect("networks");
                codes
            })
            .collect();
        for (t, codes) in (0..64u32).zip(&got) {
            for (i, &net) in (t * 50..t * 50 + 400).zip(codes) {
                let want = network_of(&ip(i)).expect("public");
                assert_eq!(dict.name(net), Some(want.as_str()));
            }
            assert_eq!(
                codes[400..],
                [NULL, NULL],
                "internal and absent: no network"
            );
        }
    }

    /// A network's rows are found by the same addresses whether the addresses are in the frame
    /// or wait beside it, listed by ingest's chunks rather than read back. Asked beside the
    /// frame first, so the addresses (of this test alone) are learned from the list.
    #[test]
    fn a_network_s_addresses_are_found_beside_the_frame_as_in_it() {
        use crate::normalize::schema::col::{NETWORK, SOURCE_IP, TS};
        let n = 500;
        let ip =
            |i: usize| (!i.is_multiple_of(7)).then(|| format!("198.18.{}.{}", 70 + i % 3, i % 50));
        let ips: Vec<Option<String>> = (0..n).map(ip).collect();
        let df = DataFrame::new(
            n,
            vec![
                Column::new(TS.into(), (0..n as i64).collect::<Vec<_>>()),
                crate::frame::key_column(SOURCE_IP, ips.clone()).expect("addresses"),
            ],
        )
        .expect("frame");
        let dir = tempfile::tempdir().expect("dir");
        let (hot, cold) = crate::reduce::tests::beside(&df, dir.path(), &[3, 40, 1, 170]);
        assert!(hot.column(SOURCE_IP).is_err());
        let wanted = [
            ("198.18.71.0/24", 1),
            ("198.18.72.0/24", 2),
            ("203.0.113.0/24", 3),
        ];
        let (read, beside) = lookup(&hot, &cold, NETWORK, &wanted).expect("beside");
        let (read_in, held) =
            lookup(&df, &crate::normalize::cold::IN_FRAME, NETWORK, &wanted).expect("in frame");
        assert_eq!((read, read_in), (SOURCE_IP, SOURCE_IP));
        let codes = crate::frame::codes(&df, SOURCE_IP).expect("codes");
        for (i, (&code, ip)) in codes.iter().zip(&ips).enumerate() {
            let want = match ip.as_deref().and_then(network_of).as_deref() {
                Some("198.18.71.0/24") => Some(1),
                Some("198.18.72.0/24") => Some(2),
                _ => None,
            };
            assert_eq!(beside.get(code), want, "row {i}, {ip:?}");
            assert_eq!(held.get(code), want, "row {i}, {ip:?}");
        }
        assert!(codes.iter().any(|&c| beside.get(c) == Some(2)));
    }

    /// The bit set gives what sorting every code and dropping repeats gives.
    #[test]
    fn distinct_codes_as_sorting_gives_them() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
        for n in [0usize, 1, 63, 64, 65, 5000] {
            let chunks: Vec<Vec<u32>> = (0..4)
                .map(|_| {
                    (0..n)
                        .map(|_| match rng.random_range(0..4) {
                            0 => rng.random_range(0..64),
                            1 => rng.random_range(0..100_000),
                            _ => rng.random_range(0..n.max(1) as u32),
                        })
                        .collect()
                })
                .collect();
            let mut want: Vec<u32> = chunks.concat();
            want.sort_unstable();
            want.dedup();
            // A bound above every code, and bounds some codes pass (sized again by the greatest).
            for bound in [100_000, 64, 1, 0] {
                let got = distinct(
                    || chunks.par_iter().flat_map_iter(|c| c.iter().copied()),
                    bound,
                );
                assert_eq!(got, want, "{n} codes a chunk, bound {bound}");
            }
        }
    }
}
