//! Token ids placed once they wait on disk. Past `--spill-from-events` an id is known in memory
//! by a 96-bit fingerprint alone (a 32-bit tag that places it, 64 more bits per code), and its
//! text goes to disk as it is placed ([`super::disk`]). Every id must stay in the table while
//! ingest reads: at 85.9M events 19.75M of the 34.95M ids placed were already known, 10.8M of
//! them placed more than 4M ids earlier, so comparing texts read back from disk was ruled out.
//!
//! The fingerprint is SipHash-1-3's 128-bit output under a key drawn for each run: a
//! pseudo-random function, so a token's author, who chooses its id, cannot aim at another id's
//! fingerprint without the key. Two ids are compared only when the second's run of slots meets
//! the first, and are taken as one only when their rests and the tag's bits a slot keeps agree:
//! over 10⁹ distinct ids (a month of the incident's gateway is about 175M) that happens with a
//! probability of about 10⁻¹⁰.
//!
//! In memory: 4 bytes a slot (the table is an eighth to nine sixteenths empty) and 8 bytes an id.
//! A slot keeps its code and as many of the tag's bits as the code leaves, not the whole tag, so
//! the slots are rebuilt from the ids on disk when they double. With 8-byte slots (the whole tag
//! beside the code) the table held 921 MB while the 300.15M-event export was read (53.1M ids,
//! 2²⁶ slots), now 665 MB, and ingest's peak went 3.15 → 2.96 GB; at 100.09M events 393 → 265
//! MB, ingest's time within its spread (`docs/performance.md`, fifty-seventh session).

use polars::prelude::*;
use siphasher::sip128::SipHasher13;

use super::disk::OnDisk;
use crate::normalize::dictionary::prefetch;

/// An id's fingerprint: `tag` places it and a slot keeps its high bits, `rest` is kept by code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Print {
    tag: u32,
    rest: u64,
}

/// The key of one run's fingerprints.
#[derive(Clone, Copy)]
pub(super) struct Key(u64, u64);

impl Key {
    pub(super) fn random() -> Key {
        Key(rand::random(), rand::random())
    }

    pub(super) fn print(self, id: &str) -> Print {
        let h = SipHasher13::new_with_keys(self.0, self.1).hash(id.as_bytes());
        Print {
            tag: h.h1 as u32,
            rest: h.h2,
        }
    }
}

pub(super) struct Fingerprints {
    index: Index,
    key: Key,
    pub(super) disk: OnDisk,
}

/// The slots and the `rest` of each code's fingerprint.
struct Index {
    /// A power of two long (at most [`MOST_SLOTS`]), at most [`FULL`] eighths full. A slot
    /// holds its code plus one in the bits below the length, the tag's bits above them, and
    /// is empty when zero: zeroed slots are the kernel's untouched pages until used.
    slots: Vec<u32>,
    rests: Rests,
}

/// How full the slots may be, in eighths, before they double. At three quarters the 300.15M-event
/// export's 53.1M ids doubled them to 2²⁷ slots near the end of ingest; at seven eighths they
/// stay at 2²⁶. Probing is linear, so even a miss at seven eighths (about 32 slots on average)
/// reads two cache lines in a row, and reads a rest for about one slot in 64 there (the six
/// bits of the tag a slot keeps at 2²⁶ agreeing by chance).
const FULL: usize = 7;

/// The most slots: their codes plus one, below the length, then fit in 31 bits and a slot
/// still keeps one bit of the tag.
const MOST_SLOTS: usize = 1 << 31;

/// The most ids the slots hold ([`FULL`] eighths of [`MOST_SLOTS`], less one); past it a run
/// fails rather than compare fingerprints by too few bits.
const MOST_IDS: usize = MOST_SLOTS / 8 * FULL - 1;

/// Codes' `rest`s in blocks of [`BLOCK`]: a vector doubling as ids come held up to twice the
/// rests while it moved (0.27 + 0.54 GB at the 300.15M export's 33.5M-th id) and up to twice
/// them after (0.54 GB for 53.1M ids' 0.42 GB).
#[derive(Default)]
struct Rests(Vec<Vec<u64>>);

/// Rests a block: 8 MiB.
const BLOCK: usize = 1 << 20;

impl Rests {
    fn len(&self) -> usize {
        self.0
            .last()
            .map_or(0, |b| (self.0.len() - 1) * BLOCK + b.len())
    }

    fn push(&mut self, rest: u64) {
        match self.0.last_mut() {
            Some(block) if block.len() < BLOCK => block.push(rest),
            _ => {
                let mut block = Vec::with_capacity(BLOCK);
                block.push(rest);
                self.0.push(block);
            }
        }
    }

    fn get(&self, code: u32) -> u64 {
        let code = code as usize;
        self.0[code / BLOCK][code % BLOCK]
    }

    fn bytes(&self) -> usize {
        self.0.iter().map(Vec::capacity).sum::<usize>() * 8
    }
}

/// Refuses more ids than the slots can tell apart.
fn too_many(ids: usize) -> std::io::Result<()> {
    match ids > MOST_IDS {
        true => Err(std::io::Error::other(format!(
            "more than {MOST_IDS} distinct token ids"
        ))),
        false => Ok(()),
    }
}

impl Fingerprints {
    /// A table of the distinct `ids`, coded 0, 1, 2… in order, written to new files in `dir`.
    pub(super) fn written<'v>(
        dir: &std::path::Path,
        key: Key,
        ids: impl ExactSizeIterator<Item = &'v str>,
    ) -> crate::error::Result<Fingerprints> {
        too_many(ids.len()).map_err(|e| crate::error::Error::io(dir, e))?;
        let mut index = Index::for_ids(ids.len());
        let mut disk = OnDisk::create(dir)?;
        for id in ids {
            disk.push(id).map_err(|e| crate::error::Error::io(dir, e))?;
            index.add(key.print(id));
        }
        Ok(Fingerprints { index, key, disk })
    }

    /// A table of the ids on `disk` (distinct, in code order), each fingerprinted under `key`;
    /// the disk back with the error when it cannot be read.
    pub(super) fn of(mut disk: OnDisk, key: Key) -> Result<Fingerprints, (OnDisk, std::io::Error)> {
        if let Err(e) = too_many(disk.count) {
            return Err((disk, e));
        }
        let mut index = Index::for_ids(disk.count);
        match disk.for_each(|id| {
            index.add(key.print(id));
        }) {
            Ok(()) => Ok(Fingerprints { index, key, disk }),
            Err(e) => Err((disk, e)),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.index.rests.len()
    }

    /// Asks the CPU to start loading the slot where `print` is looked up first.
    pub(super) fn prefetch(&self, print: Print) {
        let slots = &self.index.slots;
        prefetch(&slots[print.tag as usize & (slots.len() - 1)]);
    }

    /// The code of `id`, whose fingerprint is `print`, added (and written) if new.
    pub(super) fn code(&mut self, print: Print, id: &str) -> PolarsResult<u32> {
        if let Some(code) = self.index.find(print) {
            return Ok(code);
        }
        let held = self.index.rests.len();
        if held >= MOST_IDS {
            polars_bail!(ComputeError: "more than {MOST_IDS} distinct token ids");
        }
        if (held + 2) * 8 > self.index.slots.len() * FULL
            && let Err(e) = self.doubled()
        {
            let dir = self.disk.dir.display();
            polars_bail!(ComputeError: "reading back the token ids in {dir}: {e}");
        }
        self.disk.push(id).map_err(
            |e| polars_err!(ComputeError: "writing token ids to {}: {e}", self.disk.dir.display()),
        )?;
        Ok(self.index.add(print))
    }

    /// Twice the slots, every id placed again from its text on disk: a slot does not keep the
    /// tag's bits that placed it. An id whose fingerprint is not its code's any more (a damaged
    /// file) fails the run.
    fn doubled(&mut self) -> std::io::Result<()> {
        let index = &mut self.index;
        let len = index.slots.len() * 2;
        // Nothing is read from the old slots: they go before the new ones are made, so the two
        // are never held together (at 2²⁵ → 2²⁶ slots, 134 MB beside 268 MB).
        index.slots = Vec::new();
        index.slots = vec![0; len];
        let (key, mut code, mut agree) = (self.key, 0u32, true);
        self.disk.for_each(|id| {
            // An id past the rests (a write that failed after it was counted) is not placed.
            let print = key.print(id);
            agree &= (code as usize) < index.rests.len() && index.rests.get(code) == print.rest;
            if agree {
                index.place(code, print.tag);
            }
            code = code.saturating_add(1);
        })?;
        match agree && code as usize == index.rests.len() {
            true => Ok(()),
            false => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the ids read back are not the ids placed",
            )),
        }
    }

    /// Bytes held in memory.
    pub(super) fn bytes(&self) -> usize {
        self.index.slots.capacity() * 4 + self.index.rests.bytes() + self.disk.bytes_held()
    }

    /// The ids on disk, nothing else kept. Ids that could not be written fail their reads,
    /// and with them the run ([`super::Tokens::check`]).
    pub(super) fn into_disk(mut self) -> OnDisk {
        let _ = self.disk.release();
        self.disk
    }
}

impl Index {
    /// The code of the id fingerprinted `print`, if held.
    fn find(&self, print: Print) -> Option<u32> {
        let mask = (self.slots.len() - 1) as u32;
        let mut i = print.tag & mask;
        loop {
            let s = self.slots[i as usize];
            if s == 0 {
                return None;
            }
            if s & !mask == print.tag & !mask {
                let code = (s & mask) - 1;
                if self.rests.get(code) == print.rest {
                    return Some(code);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Slots enough for `ids` ids without doubling (at least 1024; `ids` at most [`MOST_IDS`]).
    fn for_ids(ids: usize) -> Index {
        let mut len = 1024;
        while (ids + 1) * 8 > len * FULL && len < MOST_SLOTS {
            len *= 2;
        }
        Index {
            slots: vec![0; len],
            rests: Rests::default(),
        }
    }

    /// Adds an id not held, with the next code; the slots have room for it.
    fn add(&mut self, print: Print) -> u32 {
        let code = self.rests.len() as u32;
        self.rests.push(print.rest);
        self.place(code, print.tag);
        code
    }

    /// Puts `code`, fingerprinted with `tag`, in the first free slot of its run.
    fn place(&mut self, code: u32, tag: u32) {
        let mask = (self.slots.len() - 1) as u32;
        let mut i = tag & mask;
        while self.slots[i as usize] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i as usize] = (tag & !mask) | (code + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In slots made for a known count, ids sharing a tag (their slots' runs collide) are
    /// told apart by their rests, and ids sharing a slot's run but not the tag's high bits by
    /// those bits; the slots are the least power of two that holds them at seven eighths.
    #[test]
    fn ids_sharing_a_run_of_slots_are_told_apart() {
        let n = BLOCK + 650_000;
        let print = |i: usize| Print {
            // Ids in pairs sharing a tag: the same run of slots, told apart by the rest.
            tag: ((i / 2) as u32).wrapping_mul(0x9E37_79B9),
            rest: (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 0x5555,
        };
        let mut index = Index::for_ids(n);
        for i in 0..n {
            assert_eq!(index.add(print(i)), i as u32);
        }
        assert_eq!(index.rests.0.len(), 2);
        // Three quarters would take 2²².
        assert_eq!(index.slots.len(), 1 << 21);
        for i in (0..n).step_by(7).chain([BLOCK - 1, BLOCK, n - 1]) {
            assert_eq!(index.find(print(i)), Some(i as u32), "{i}");
        }
        let known = print(10);
        let unknown_rest = Print { rest: 1, ..known };
        // The same first slot and rest, another bit above the slots' length.
        let other_high = Print {
            tag: known.tag ^ (1 << 30),
            ..known
        };
        assert_eq!(index.find(unknown_rest), None);
        assert_eq!(index.find(other_high), None);
    }

    /// Ids placed one by one from an empty table, past a block of rests and through the slots'
    /// doublings (each placing every id again from its text on disk), keep their codes, are
    /// found again by fingerprint, and never fill the slots past seven eighths; a file that
    /// no longer holds the ids placed, cut short or unlike their rests, fails the next doubling
    /// instead of misplacing them.
    #[test]
    fn ids_placed_through_doublings_keep_their_codes() {
        let dir = tempfile::tempdir().expect("dir");
        let key = Key::random();
        let mut table = Fingerprints::written(dir.path(), key, [].into_iter()).expect("table");
        let id = |i: usize| format!("tk-{i:x}");
        let n = BLOCK + 650_000;
        for i in 0..n {
            let code = table.code(key.print(&id(i)), &id(i)).expect("placed");
            assert_eq!(code, i as u32);
            assert!(table.len() * 8 <= table.index.slots.len() * FULL, "{i}");
        }
        assert_eq!(table.index.slots.len(), 1 << 21);
        for i in (0..n).step_by(5).chain([BLOCK - 1, BLOCK, n - 1]) {
            assert_eq!(table.code(key.print(&id(i)), &id(i)).ok(), Some(i as u32));
        }
        assert_eq!(table.len(), n);

        let mut damaged = Fingerprints::written(dir.path(), key, [].into_iter()).expect("table");
        for i in 0..800 {
            damaged.code(key.print(&id(i)), &id(i)).expect("placed");
        }
        damaged.disk.damage(100);
        let failed = (800..2_000).find_map(|i| damaged.code(key.print(&id(i)), &id(i)).err());
        assert!(failed.is_some(), "a doubling read the damaged ids");
        // Ids read back whole but fingerprinted otherwise than their codes' rests.
        let mut unlike = Fingerprints::written(dir.path(), key, [].into_iter()).expect("table");
        for i in 0..800 {
            unlike.code(key.print(&id(i)), &id(i)).expect("placed");
        }
        unlike.key = Key::random();
        let other = unlike.key;
        let failed = (800..2_000).find_map(|i| unlike.code(other.print(&id(i)), &id(i)).err());
        assert!(failed.is_some(), "a doubling placed ids unlike their rests");
    }
}
