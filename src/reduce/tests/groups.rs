//! A window reduced a group of whole local days at a time against the same rows reduced whole.

use super::*;

/// A window of more rows than a group holds is reduced in groups of whole local days, merged
/// as they are made: the profiles are the ones counted over every event, in every zone, with
/// groups of one day and of several, and no (entity, day) is made twice.
#[test]
fn a_window_reduced_in_groups_of_days_gives_the_whole_runs_profiles() {
    let rows = random_events(13);
    let events = frame(&rows);
    let access = rows
        .iter()
        .filter(|r| r.1 == "access" && r.5.is_some())
        .count();
    for time in zones() {
        let days: BTreeSet<i64> = rows.iter().map(|r| time.local_day(r.0).day).collect();
        assert!(days.len() >= 10, "{days:?}");
        for group in [0, access / 5, access / 2] {
            let how = Placing {
                big: None,
                side_by_side: KINDS_SIDE_BY_SIDE,
                group,
                ..Placing::default()
            };
            let selected = access::Selected::of(
                &events,
                &ColdColumns::default(),
                crate::frame::event_type::code("access").expect("access"),
                how.targets_run,
            )
            .expect("selected");
            let beside = (&events, &ColdColumns::default());
            let (_, spans) =
                (selected.day_spans((&time, group), beside, how.targets_run)).expect("spans");
            assert!(
                spans.len() > 1 && spans.len() <= days.len(),
                "{group}: {spans:?}"
            );
            assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "{spans:?}");
            let mut symbols = Symbols::new();
            let reduced =
                Reduced::of_placing(&events, &time, WALK, &mut symbols, how).expect("reduce");
            assert_eq!(reduced.overlapping, 0, "{group}");
            assert_same(&reduced, &symbols, &events, &time);
        }
    }
}

/// An export in time order is read in chunks of a few hours each, and a group of days asks only
/// the chunks whose instants meet its days (`access::Marked::within`): grouped over chunks of one
/// row, of 37 and of about a day's rows, in time order or with some rows moved out of it, the
/// records are those of the same rows in one chunk, grouped alike, in every zone, and their
/// profiles are the ones counted over every event.
#[test]
fn groups_over_time_ordered_chunks_give_the_whole_runs_records() {
    let mut rows = random_events(17);
    rows.sort_by_key(|r| r.0);
    let access = (rows.iter())
        .filter(|r| r.1 == "access" && r.5.is_some())
        .count();
    let mut shuffled = rows.clone();
    let last = shuffled.len() - 1;
    for i in (0..last).step_by(3) {
        shuffled.swap(i, (i + 3 * (i % 7)).min(last));
    }
    for rows in [rows, shuffled] {
        let whole = frame(&rows);
        for size in [1, 37, 500] {
            let mut chunked = whole.slice(0, size);
            let mut at = size;
            while at < whole.height() {
                (chunked.vstack_mut(&whole.slice(at as i64, size))).expect("stacked");
                at += size;
            }
            assert_eq!(chunked.first_col_n_chunks(), whole.height().div_ceil(size));
            for time in zones() {
                let reduce = |events: &DataFrame, group| {
                    let mut symbols = Symbols::new();
                    let how = Placing {
                        group,
                        ..Placing::default()
                    };
                    let reduced = Reduced::of_placing(events, &time, WALK, &mut symbols, how)
                        .expect("reduce");
                    (reduced, symbols)
                };
                for group in [access / 6, access / 2] {
                    let (want, want_symbols) = reduce(&whole, group);
                    let (got, symbols) = reduce(&chunked, group);
                    assert!(symbols == want_symbols, "{size} {group}");
                    assert!(got == want, "{size} {group}");
                    assert_same(&got, &symbols, &chunked, &time);
                }
            }
        }
    }
}

/// A chunk's instants need not be in time order: lines wandering over midnight, as in the
/// 300.15M-event export, are counted once for each local day they fall on, however often they
/// cross it, and each day's count is the number of its instants; in every zone, across New
/// York's change of clocks (2025-03-09, a 23-hour day) and before 1970.
#[test]
fn a_chunk_s_days_are_counted_once_each_however_its_instants_wander() {
    const HOUR: i64 = 3_600_000;
    for start in [1_741_478_400_000_i64, -86_400_000 * 3] {
        // Every 40 minutes over three days, shuffled by a fixed stride: consecutive instants
        // are about a day apart, each day met many times.
        let n = 3 * 36;
        let ts: Vec<i64> = (0..n)
            .map(|i| start + ((i * 37) % n) * HOUR * 2 / 3)
            .collect();
        for time in zones() {
            let days = access::days_of(&time, &ts);
            let mut expected: BTreeMap<i64, usize> = BTreeMap::new();
            for &t in &ts {
                *expected.entry(time.local_day(t).day).or_default() += 1;
            }
            let mut counted: Vec<(i64, usize)> = days.clone();
            counted.sort();
            assert_eq!(counted, expected.into_iter().collect::<Vec<_>>(), "{ts:?}");
            let crossings = ts
                .windows(2)
                .filter(|w| time.local_day(w[0]).day != time.local_day(w[1]).day);
            assert!(crossings.count() > 2 * days.len(), "{days:?}");
        }
    }
}
