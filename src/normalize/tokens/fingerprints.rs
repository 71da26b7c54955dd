//! Token ids placed once they wait on disk. Past `--spill-from-events` an id is known in memory
//! by a 96-bit fingerprint alone (a slot's 32-bit tag and 64 more bits per code), and its text
//! goes to disk as it is placed ([`super::disk`]). Every id must stay in the table while ingest
//! reads: at 85.9M events 19.75M of the 34.95M ids placed were already known, 10.8M of them
//! placed more than 4M ids earlier, so comparing texts read back from disk was ruled out.
//!
//! The fingerprint is SipHash-1-3's 128-bit output under a key drawn for each run: a
//! pseudo-random function, so a token's author, who chooses its id, cannot aim at another id's
//! fingerprint without the key. Two of 10⁹ distinct ids (a month of the incident's gateway is
//! about 175M) share one with a probability of about 10⁻¹¹.
//!
//! In memory: 8 bytes a slot (the table is an eighth to nine sixteenths empty) and 8 bytes an id,
//! against the ids' text, 8 bytes an id for where each ends and the same slots. Measured in
//! `docs/performance.md` (thirty-fifth session).

use polars::prelude::*;
use siphasher::sip128::SipHasher13;

use super::disk::OnDisk;
use crate::normalize::dictionary::{NULL, prefetch};

/// A slot: the code in the low half, the fingerprint's tag in the high half; empty when the
/// code is [`NULL`].
const EMPTY: u64 = NULL as u64;

/// An id's fingerprint: `tag` places it and is kept in its slot, `rest` is kept by code.
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
    pub(super) disk: OnDisk,
}

/// The slots and the `rest` of each code's fingerprint.
struct Index {
    /// A power of two long, at most [`FULL`] full.
    slots: Vec<u64>,
    rests: Rests,
}

/// How full the slots may be, in eighths, before they double. At three quarters the 300.15M-event
/// export's 53.1M ids doubled them to 2²⁷ slots (1.07 GB) near the end of ingest, 0.54 GB and
/// 1.07 GB held together while moving; at seven eighths they stay at 2²⁶ (0.54 GB). Probing is
/// linear over 8-byte slots, so even a miss at seven eighths (about 32 slots on average) reads
/// four cache lines in a row.
const FULL: usize = 7;

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

impl Fingerprints {
    /// A table of the distinct `ids`, coded 0, 1, 2… in order, written to new files in `dir`.
    pub(super) fn written<'v>(
        dir: &std::path::Path,
        key: Key,
        ids: impl ExactSizeIterator<Item = &'v str>,
    ) -> crate::error::Result<Fingerprints> {
        let mut index = Index::for_ids(ids.len());
        let mut disk = OnDisk::create(dir)?;
        for id in ids {
            disk.push(id).map_err(|e| crate::error::Error::io(dir, e))?;
            index.add(key.print(id));
        }
        Ok(Fingerprints { index, disk })
    }

    /// A table of the ids on `disk` (distinct, in code order), each fingerprinted under `key`;
    /// the disk back with the error when it cannot be read.
    pub(super) fn of(mut disk: OnDisk, key: Key) -> Result<Fingerprints, (OnDisk, std::io::Error)> {
        let mut index = Index::for_ids(disk.count);
        match disk.for_each(|id| {
            index.add(key.print(id));
        }) {
            Ok(()) => Ok(Fingerprints { index, disk }),
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
        let rests = &self.index.rests;
        if u32::try_from(rests.len()).map_or(true, |c| c == NULL) {
            polars_bail!(ComputeError: "more than 2³² distinct token ids");
        }
        self.disk.push(id).map_err(
            |e| polars_err!(ComputeError: "writing token ids to {}: {e}", self.disk.dir.display()),
        )?;
        Ok(self.index.add(print))
    }

    /// Bytes held in memory.
    pub(super) fn bytes(&self) -> usize {
        self.index.slots.capacity() * 8 + self.index.rests.bytes() + self.disk.bytes_held()
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
        let mask = self.slots.len() - 1;
        let mut i = print.tag as usize & mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            let code = s as u32;
            if (s >> 32) as u32 == print.tag && self.rests.get(code) == print.rest {
                return Some(code);
            }
            i = (i + 1) & mask;
        }
    }

    /// Slots enough for `ids` ids without doubling (at least 1024).
    fn for_ids(ids: usize) -> Index {
        let mut len = 1024;
        while (ids + 1) * 8 > len * FULL {
            len *= 2;
        }
        Index {
            slots: vec![EMPTY; len],
            rests: Rests::default(),
        }
    }

    /// Adds an id not held, with the next code.
    fn add(&mut self, print: Print) -> u32 {
        let code = self.rests.len() as u32;
        self.rests.push(print.rest);
        if (self.rests.len() + 1) * 8 > self.slots.len() * FULL {
            let size = self.slots.len() * 2;
            let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
            for s in old.into_iter().filter(|&s| s != EMPTY) {
                let at = self.free_slot((s >> 32) as u32);
                self.slots[at] = s;
            }
        }
        let at = self.free_slot(print.tag);
        self.slots[at] = ((print.tag as u64) << 32) | code as u64;
        code
    }

    fn free_slot(&self, tag: u32) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = tag as usize & mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past a block of rests and through the slots' doublings, every id added is found with its
    /// code, ids sharing a tag (their slots' runs collide) are told apart by their rests, and
    /// the slots never pass seven eighths full; the slots made for a known count never double.
    #[test]
    fn ids_added_past_a_block_and_through_doublings_are_found_by_fingerprint() {
        let n = BLOCK + 650_000;
        let print = |i: usize| Print {
            // Ids in pairs sharing a tag: the same run of slots, told apart by the rest.
            tag: ((i / 2) as u32).wrapping_mul(0x9E37_79B9),
            rest: (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 0x5555,
        };
        let mut index = Index::for_ids(0);
        for i in 0..n {
            assert_eq!(index.add(print(i)), i as u32);
            assert!(index.rests.len() * 8 <= index.slots.len() * FULL, "{i}");
        }
        assert_eq!(index.rests.len(), n);
        assert_eq!(index.rests.0.len(), 2);
        for i in (0..n).step_by(7).chain([BLOCK - 1, BLOCK, n - 1]) {
            assert_eq!(index.find(print(i)), Some(i as u32), "{i}");
        }
        let unknown = Print {
            tag: print(10).tag,
            rest: 1,
        };
        assert_eq!(index.find(unknown), None);
        let sized = Index::for_ids(n);
        assert_eq!(sized.slots.len(), index.slots.len());
        // The least power of two holding them at seven eighths; three quarters would take 2²².
        assert_eq!(index.slots.len(), 1 << 21);
    }
}
