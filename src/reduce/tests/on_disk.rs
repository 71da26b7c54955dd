//! Records made on disk ([`Reduced::of_on_disk`]) against the records made in memory.

use super::*;
use crate::reduce::days::DaySets;

/// A window reduced onto disk (`Reduced::of_on_disk`), a group of days at a time, each group
/// written and the groups merged in one streamed pass, reads back as the records made in
/// memory, symbols and accounts no entity holds included: in three zones, one group or several,
/// batches and row groups of a few rows or whole; a frame without access events gives empty
/// records.
#[test]
fn a_window_reduced_onto_disk_reads_back_as_reduced_in_memory() {
    let rows = with_orphans(random_events(21));
    let events = frame(&rows);
    let access = (rows.iter())
        .filter(|r| r.1 == "access" && r.5.is_some())
        .count();
    let dir = tempfile::tempdir().expect("temp dir");
    let (hot, cold) = beside(&events, dir.path(), &[7, 50, 1, 300]);
    assert!(hot.column(c::TARGET).is_err());
    let mut runs = 0;
    for time in zones() {
        for group in [access / 4, access / 2, GROUP_ROWS] {
            let how = Placing {
                group,
                ..Placing::default()
            };
            let mut symbols = Symbols::new();
            let want =
                Reduced::of_placing(&events, &time, WALK, &mut symbols, how).expect("reduce");
            // The targets in the frame, then waiting on disk beside it, as a big run's: asked
            // for a few chunks at a time, or all at once.
            let in_frame = (&events, &ColdColumns::default());
            // Groups merged all at once, or two or three at a time in rounds.
            for (cells, days, frame, targets_run, merged_at_once) in [
                (2, 3, in_frame, how.targets_run, 2),
                (
                    usize::MAX,
                    usize::MAX,
                    in_frame,
                    how.targets_run,
                    usize::MAX,
                ),
                (2, 3, (&hot, &cold), 60, usize::MAX),
                (usize::MAX, usize::MAX, (&hot, &cold), how.targets_run, 3),
            ] {
                // Each kind made (and written) one after another, or the four side by side.
                let how = Placing {
                    targets_run,
                    merged_at_once,
                    side_by_side: [0, usize::MAX][runs % 2],
                    ..how
                };
                let batches = store::Batches { cells, days };
                let to = dir.path().join(runs.to_string());
                runs += 1;
                let mut on_disk = Symbols::new();
                // Day sets kept every other run, as a state keeps them.
                let day_sets = runs % 2 == 0;
                let made = Reduced::of_on_disk_placing(
                    frame,
                    &time,
                    WALK,
                    &mut on_disk,
                    (&to, day_sets),
                    how,
                    batches,
                )
                .expect("reduced onto disk");
                assert!(on_disk == symbols, "symbols differ, group {group}");
                assert_eq!(made.accounts, want.accounts);
                assert_eq!(made.self_served, want.self_served(), "group {group}");
                let (back, named) = store::read(&to).expect("read back");
                assert!(named == symbols, "stored symbols differ, group {group}");
                assert!(back == want, "group {group}, {batches:?}");
                for (k, kind) in want.kinds.iter().enumerate() {
                    let singles = store::singles_stored(&to, k).expect("singles counted");
                    assert_eq!(singles, kind.singles.len() as u64, "kind {k}");
                }
                assert!(!want.orphans.is_empty());
                // No group is left.
                let mut left: Vec<String> = (std::fs::read_dir(&to).expect("listed"))
                    .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .collect();
                left.sort();
                assert_eq!(left.len(), 15 + usize::from(day_sets), "{left:?}");
                if day_sets {
                    let days = store::read_days(&to, symbols.len() as u64).expect("day sets");
                    assert!(days == DaySets::of(&want), "day sets, group {group}");
                    assert!(!days.0.is_empty());
                }
                assert!(!left.contains(&"groups".to_string()), "{left:?}");
            }
        }
    }
    let none: Vec<Event> = (rows.iter()).filter(|r| r.1 != "access").cloned().collect();
    let to = dir.path().join("none");
    let time = TimeParser::new(chrono_tz::UTC);
    let mut symbols = Symbols::new();
    let in_frame = ColdColumns::default();
    let made = Reduced::of_on_disk(
        (&frame(&none), &in_frame),
        &time,
        WALK,
        &mut symbols,
        (&to, true),
    )
    .expect("none");
    assert_eq!(made, OnDisk::default());
    let (back, _) = store::read(&to).expect("read back");
    assert_eq!(back, Reduced::default());
    assert_eq!(store::singles_stored(&to, 0).expect("none counted"), 0);
    assert_eq!(
        store::singles_stored(&dir.path().join("absent"), 0).ok(),
        Some(0)
    );
}

/// A round's sets: as few as hold at most `at_once` groups each, and none larger than it must
/// be; nine groups at eight at once are sets of five and four, not eight and one.
#[test]
fn merge_rounds_share_the_groups_evenly() {
    assert_eq!(crate::reduce::on_disk::set_size(9, 8), 5);
    assert_eq!(crate::reduce::on_disk::set_size(22, 8), 8);
    for at_once in 1..12 {
        for groups in 1..100usize {
            let size = crate::reduce::on_disk::set_size(groups, at_once);
            let sets = groups.div_ceil(size);
            assert!(
                size <= at_once,
                "{groups} groups, {at_once} at once: {size}"
            );
            assert_eq!(
                sets,
                groups.div_ceil(at_once),
                "{groups} groups, {at_once} at once"
            );
            // One fewer in each set would need another set.
            assert!(
                size == 1 || (size - 1) * sets < groups,
                "{groups}, {at_once}: {size}"
            );
        }
    }
}

/// Groups hold 4Mi access rows up to about 100M events, then a 24th of the events: the
/// 257.5M-event export is cut into about sixteen groups, not forty-two.
#[test]
fn groups_grow_with_the_frame_past_100m_events() {
    use crate::reduce::on_disk::group_rows;
    assert_eq!(group_rows(0), 4 << 20);
    assert_eq!(group_rows(85_905_300), 4 << 20);
    assert_eq!(group_rows(100_093_306), 4 << 20);
    assert_eq!(group_rows(257_539_431), 257_539_431 / 24);
    assert!(group_rows(1 << 31) > group_rows(1 << 30));
}
