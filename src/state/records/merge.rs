//! Stored records merged with a night's as they are rewritten: each kind streamed, its stale
//! days dropped and the night's records merged in, written into the folder `save` renames into
//! place (see the parent module).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use roaring::RoaringBitmap;

use crate::error::Result;
use crate::normalize::schema::col as c;
use crate::reduce::{Entities, KINDS, Reduced, store};

/// The stored records, the local days to drop from them, and the table's size before this run.
pub(super) struct Kept<'a> {
    pub dir: &'a Path,
    /// Every account of the records once merged: known from the days' sets, so not gathered
    /// again from every record kept.
    pub accounts: &'a RoaringBitmap,
    pub orphans: BTreeMap<i64, RoaringBitmap>,
    pub stale: &'a BTreeSet<i64>,
    pub symbols: u64,
}

/// What one kind's merge counted, and the names it used (see `Kept::merge_kind`).
type KindDone = (store::KindMerged, RoaringBitmap);

/// What merging the stored records with a run's left besides the kinds' files.
pub(super) struct Merged {
    pub self_served: u64,
    /// Names the stored records still use (entities and accounts), the run's not added.
    pub named: RoaringBitmap,
    pub overlapping: u64,
}

impl Kept<'_> {
    /// Each kind's stale days dropped and `fresh`'s merged in as the kind is streamed, written
    /// into `new` as merged ([`store::merge_kind`]), as many kinds at a time as rayon has
    /// threads; then the account sets, every account as given and the orphans' kept by day. What [`Reduced::without_days`] and [`Reduced::merge`] do
    /// to records held whole, with a few batches of each kind being merged held at a time.
    ///
    /// Side by side because one small kind's merge kept about one core busy (its readers
    /// decoding, the merge waiting): a night added to 30 nights of the 10.12M-event benchmark,
    /// records stage 0.34 s at 1.1 cores one kind after another, 0.27–0.31 s two at a time. At
    /// the 85.9M state one merge already kept 1.3 cores busy and two are level with it
    /// (`docs/performance.md`, forty-fourth session).
    pub(super) fn merge_into(self, new: &Path, fresh: Reduced) -> Result<Merged> {
        let Reduced {
            kinds,
            orphans: fresh_orphans,
            overlapping: fresh_overlapping,
            ..
        } = fresh;
        let merged = self.merge_kinds(new, kinds)?;
        let mut named = RoaringBitmap::new();
        let (mut self_served, mut overlapping) = (0, fresh_overlapping);
        for (k, (kind, names)) in merged.into_iter().enumerate() {
            overlapping += kind.overlapping;
            if KINDS[k] == c::PRINCIPAL {
                self_served = kind.self_served;
            }
            named |= names;
        }
        let mut orphans = self.orphans;
        orphans.retain(|day, _| !self.stale.contains(day));
        for (day, set) in fresh_orphans {
            *orphans.entry(day).or_default() |= set;
        }
        named |= self.accounts;
        store::write_sets(new, self.accounts, &orphans)?;
        Ok(Merged {
            self_served,
            named,
            overlapping,
        })
    }

    /// Every kind merged and written, as many at a time as rayon has threads (up to four), the
    /// results in kind order.
    fn merge_kinds(&self, new: &Path, kinds: [Entities; 4]) -> Result<Vec<KindDone>> {
        // The biggest stored kinds first, so that the threads finish together: in kind order,
        // one thread took the principals then the addresses, the two biggest (0.48 against
        // 0.23 s, a night added to 120 of the 10M-event benchmark).
        let mut order: Vec<usize> = (0..KINDS.len()).collect();
        order.sort_by_key(|&k| std::cmp::Reverse(store::stored_bytes(self.dir, k)));
        // Each merge reads its share of one merge's batches, so together they read what one
        // did; each still fills its own writer's row groups (the 10.12M nights' peak rose 25–60
        // MB).
        let threads = rayon::current_num_threads().clamp(1, KINDS.len());
        let batches = store::Batches::default().shared(threads);
        store::side_by_side(kinds.into(), &order, threads, |k, theirs| {
            self.merge_kind(new, k, theirs, batches)
        })
    }

    /// Kind `k` merged and written: what it counted, and the names its stored records still
    /// use once stale days are dropped.
    fn merge_kind(
        &self,
        new: &Path,
        k: usize,
        theirs: Entities,
        batches: store::Batches,
    ) -> Result<KindDone> {
        let mut named = RoaringBitmap::new();
        let mut out = store::KindWriter::create(new, k)?;
        let seen = |mine: &Entities| {
            named.extend(mine.cells.iter().map(|c| c.entity));
            named.extend(mine.singles.iter().map(|s| s.entity));
        };
        let kind = store::merge_kind(
            self.dir,
            k,
            self.symbols,
            batches,
            self.stale,
            theirs,
            seen,
            &mut out,
        )?;
        out.finish()?;
        Ok((kind, named))
    }
}
