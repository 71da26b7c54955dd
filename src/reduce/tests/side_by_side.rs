//! `store::side_by_side`, which runs each kind's merge on threads of its own.

use crate::error::{Error, Result};
use crate::reduce::store::side_by_side;
use std::sync::Mutex;

/// Results come back by index whatever the order they were taken in; one thread takes them in
/// `order` exactly; an error stops its thread and is the error returned, and an item no thread
/// took is reported rather than dropped.
#[test]
fn side_by_side_returns_results_by_index_and_the_first_error() {
    let items: Vec<u32> = (0..7).collect();
    let order = [3, 6, 0, 1, 5, 2, 4];
    for threads in [1, 2, 4, 16] {
        let taken = Mutex::new(Vec::new());
        let out = side_by_side(items.clone(), &order, threads, |i, v| {
            taken.lock().expect("lock").push(i);
            Ok(format!("{i}:{v}"))
        })
        .expect("all done");
        let want: Vec<String> = (0..7).map(|i| format!("{i}:{i}")).collect();
        assert_eq!(out, want, "{threads} thread(s)");
        let mut taken = taken.into_inner().expect("lock");
        if threads == 1 {
            assert_eq!(taken, order, "one thread takes them in order");
        }
        taken.sort_unstable();
        assert_eq!(taken, (0..7).collect::<Vec<_>>(), "each taken once");
    }

    let ran = Mutex::new(Vec::new());
    let failed = side_by_side(items.clone(), &order, 1, |i, _| -> Result<()> {
        ran.lock().expect("lock").push(i);
        match i {
            0 => Err(Error::Internal("item 0 failed".into())),
            _ => Ok(()),
        }
    });
    assert!(
        matches!(&failed, Err(Error::Internal(why)) if why == "item 0 failed"),
        "{failed:?}"
    );
    assert_eq!(
        ran.into_inner().expect("lock"),
        [3, 6, 0],
        "none taken after"
    );

    // One thread stops at item 3, its first: items 6, 0, ... are never taken, and the error
    // explains them.
    let stopped = side_by_side(items.clone(), &order, 1, |i, _| match i {
        3 => Err(Error::Internal("item 3 failed".into())),
        _ => Ok(()),
    });
    assert!(
        matches!(&stopped, Err(Error::Internal(why)) if why == "item 3 failed"),
        "{stopped:?}"
    );

    let missed = side_by_side(items, &[0, 1], 2, |_, _| Ok(()));
    assert!(
        matches!(&missed, Err(Error::Internal(why)) if why.contains("undone")),
        "{missed:?}"
    );
}
