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
//! In memory: 8 bytes a slot (the table is a quarter to five eighths empty) and 8 bytes an id,
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
    /// A power of two long.
    slots: Vec<u64>,
    rests: Vec<u64>,
}

impl Fingerprints {
    /// A table of the distinct `ids`, coded 0, 1, 2… in order, written to new files in `dir`.
    pub(super) fn written<'v>(
        dir: &std::path::Path,
        key: Key,
        ids: impl ExactSizeIterator<Item = &'v str>,
    ) -> crate::error::Result<Fingerprints> {
        let mut index = Index::with_capacity(ids.len());
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
        let mut index = Index::with_capacity(disk.count);
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
        let Index { slots, rests } = &self.index;
        let mask = slots.len() - 1;
        let mut i = print.tag as usize & mask;
        loop {
            let s = slots[i];
            if s == EMPTY {
                break;
            }
            let code = s as u32;
            if (s >> 32) as u32 == print.tag && rests[code as usize] == print.rest {
                return Ok(code);
            }
            i = (i + 1) & mask;
        }
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
        (self.index.slots.capacity() + self.index.rests.capacity()) * 8 + self.disk.bytes_held()
    }

    /// The ids on disk, nothing else kept. Ids that could not be written fail their reads,
    /// and with them the run ([`super::Tokens::check`]).
    pub(super) fn into_disk(mut self) -> OnDisk {
        let _ = self.disk.release();
        self.disk
    }
}

impl Index {
    fn with_capacity(ids: usize) -> Index {
        Index {
            slots: vec![EMPTY; 1024],
            rests: Vec::with_capacity(ids),
        }
    }

    /// Adds an id not held, with the next code.
    fn add(&mut self, print: Print) -> u32 {
        let code = self.rests.len() as u32;
        self.rests.push(print.rest);
        if (self.rests.len() + 1) * 4 > self.slots.len() * 3 {
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
