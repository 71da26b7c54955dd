//! The strings and token ids of a state's partitions, listed once for the whole state.
//!
//! Each partition lists its own strings and token ids (`partition::write`), and reading a state
//! back placed every partition's lists: a customer active on 120 nights had its id read and
//! placed in polars' dictionary 120 times in each column it appears in. At 8.7M events in 120
//! nights that was 6.15M strings and 1.5M token ids, three quarters of read-back (0.64 of
//! 0.86 s); over the 85.9M-event state, 9.5–11.8 s of 14.7–16.7 s (`docs/performance.md`,
//! twenty-fifth session).
//!
//! `names/` keeps each distinct string and token id once, and each partition's two lists as
//! codes into those, in segments: `s<id>.strings.parquet` and `s<id>.tokens.parquet` continue
//! the state's numbering, `s<id>.string_maps.parquet` and `s<id>.token_maps.parquet` hold the
//! lists of the partitions the segment added, back to back. `names.json` lists the segments with
//! the digest of each file, and each covered partition with its digest and where its lists lie
//! among all the segments' maps. A run places the state's strings in the run's dictionary once and
//! starts its token table with the state's ids in order, so a covered partition's lists become
//! codes by lookup; a partition not covered (a new night, or names missing, damaged or of
//! another version) is listed as before, and a segment of what it added is appended: a night
//! costs a segment its size. Partitions that leave are dropped from `names.json` and their names
//! stay in the segments until those hold more than twice what the retained partitions use (or
//! there are [`MAX_SEGMENTS`]); the names are then written again as one segment.
//!
//! They are derived, like the records: never the only copy, and read only through a digest.
//! A segment is written before the `names.json` that names it replaces the old one (by a
//! rename), and files no `names.json` names are removed after; they may be written before the
//! run's manifest is committed, as a partition's lists are a function of its bytes, which its
//! digest names: a partition written again under the same name is covered only if it is the
//! same file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::manifest;
use super::partition::Placed;
use crate::error::{Error, Result};
use crate::frame::dictionary;
use crate::normalize::Tokens;
use crate::normalize::dictionary::NULL;

pub const DIR: &str = "names";
const META: &str = "names.json";
const FORMAT: &str = "audithound-names";
const VERSION: u32 = 1;
/// The four tables of a segment, by the suffix of their file names.
const TABLES: [&str; 4] = [
    "strings.parquet",
    "tokens.parquet",
    "string_maps.parquet",
    "token_maps.parquet",
];
/// Segments kept before the names are written again as one: each costs four small reads.
const MAX_SEGMENTS: usize = 64;
/// Codes the segments may hold beyond twice those in use before they are written again.
const SPARE: usize = 1 << 16;

/// One partition the names cover: its file and digest as the manifest names them, and where its
/// two lists lie among the maps of every segment, back to back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cover {
    partition: String,
    digest: String,
    strings_at: u64,
    strings: u64,
    tokens_at: u64,
    tokens: u64,
}

/// One segment: how many strings and ids it adds to the numbering and how many codes its maps
/// hold, and the `size-crc32` of each of its files as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Segment {
    id: u64,
    strings: u64,
    tokens: u64,
    string_maps: u64,
    token_maps: u64,
    digests: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    version: u32,
    segments: Vec<Segment>,
    covers: Vec<Cover>,
}

/// The stored names, with the state's strings placed in the run's dictionary.
pub struct Known {
    segments: Vec<Segment>,
    covers: Vec<Cover>,
    /// Each cover, by partition.
    at: HashMap<String, usize>,
    string_maps: Vec<u32>,
    token_maps: Vec<u32>,
    /// polars' code of each of the state's strings.
    placed: Vec<u32>,
    /// Ids in the state's numbering, which starts the run's token table.
    tokens: usize,
}

/// A partition's lists as a run placed them (see [`super::partition::Batch::placed`]).
pub struct Part<'a> {
    pub partition: &'a str,
    pub digest: &'a str,
    pub strings: &'a [u32],
    pub tokens: &'a [u32],
}

impl Known {
    /// The lists of the partition `name` with digest `digest`, placed, if the names cover it.
    pub fn placed(&self, name: &str, digest: &str) -> Option<Placed> {
        let cover = self.cover(name, digest)?;
        let span = |at: u64, n: u64| at as usize..at.saturating_add(n) as usize;
        let strings = self
            .string_maps
            .get(span(cover.strings_at, cover.strings))?;
        let tokens = self.token_maps.get(span(cover.tokens_at, cover.tokens))?;
        let strings = strings.iter().map(|&c| self.placed[c as usize]).collect();
        Some((strings, tokens.to_vec()))
    }

    fn cover(&self, name: &str, digest: &str) -> Option<&Cover> {
        let cover = self.covers.get(*self.at.get(name)?)?;
        (cover.digest == digest).then_some(cover)
    }

    /// Whether the segments hold more than twice what `covers` use, or are too many.
    fn worn(&self, covers: &[&Cover]) -> bool {
        let used = |maps: &[u32], n: usize, span: &dyn Fn(&Cover) -> (u64, u64)| {
            let mut seen = vec![false; n];
            let mut codes = 0;
            for c in covers {
                let (at, len) = span(c);
                for &code in &maps[at as usize..(at + len) as usize] {
                    seen[code as usize] = true;
                }
                codes += len as usize;
            }
            (seen.iter().filter(|&&s| s).count(), codes)
        };
        let (strings, string_codes) = used(&self.string_maps, self.placed.len(), &|c| {
            (c.strings_at, c.strings)
        });
        let (tokens, token_codes) =
            used(&self.token_maps, self.tokens, &|c| (c.tokens_at, c.tokens));
        let over = |held: usize, used: usize| held > 2 * used + SPARE;
        self.segments.len() >= MAX_SEGMENTS
            || over(self.placed.len(), strings)
            || over(self.tokens, tokens)
            || over(self.string_maps.len(), string_codes)
            || over(self.token_maps.len(), token_codes)
    }
}

/// The stored names of `state` and a token table holding the state's ids under their codes;
/// `None` when there are none, or none of the partitions `retained` (name and digest) is
/// covered.
pub fn load(state: &Path, retained: &[(&str, &str)]) -> Result<Option<(Known, Tokens)>> {
    let dir = state.join(DIR);
    let Some(meta) = read_meta(&dir)? else {
        return Ok(None);
    };
    let retained: HashSet<(&str, &str)> = retained.iter().copied().collect();
    let covered = |c: &Cover| retained.contains(&(c.partition.as_str(), c.digest.as_str()));
    if !meta.covers.iter().any(covered) {
        return Ok(None);
    }
    let unusable = |reason: &str| Error::State {
        path: dir.join(META),
        reason: reason.to_string(),
    };
    // Segments, and each segment's tables, side by side.
    let read = (meta.segments.par_iter())
        .map(|segment| read_segment(&dir, segment))
        .collect::<Result<Vec<_>>>()?;
    let (mut strings, mut token_tables) = (Vec::new(), Vec::new());
    let (mut string_maps, mut token_maps) = (Vec::new(), Vec::new());
    for r in read {
        strings.push(r.strings);
        token_tables.push(r.tokens);
        string_maps.extend(r.string_maps);
        token_maps.extend(r.token_maps);
    }
    let tokens: usize = token_tables.iter().map(|t| t.len()).sum();
    let strings: Vec<&str> = each(&strings).collect();
    // Offsets and lengths come from a file: added without overflow, within the maps.
    let fits = |maps: &[u32], n: usize, at: u64, len: u64| {
        let span = at
            .checked_add(len)
            .and_then(|end| maps.get(at as usize..end as usize));
        span.is_some_and(|codes| codes.iter().all(|&c| (c as usize) < n))
    };
    let fit = meta.covers.iter().all(|c| {
        fits(&string_maps, strings.len(), c.strings_at, c.strings)
            && fits(&token_maps, tokens, c.tokens_at, c.tokens)
    });
    if !fit {
        return Err(unusable("a partition's lists lie outside the names"));
    }
    // One thread places the strings while another lists the ids. Placed side by side, the
    // 85.9M-event state's 3.0M strings took 0.97 s against 0.6 s on one thread: the run's
    // dictionary is one shared table.
    let (placed, table) = rayon::join(
        || dictionary().insert_all(&strings),
        || Tokens::listed(each(&token_tables)),
    );
    let placed = placed.map_err(|e| unusable(&format!("placing strings: {e}")))?;
    let at = (meta.covers.iter().enumerate())
        .map(|(i, c)| (c.partition.clone(), i))
        .collect();
    let known = Known {
        segments: meta.segments,
        covers: meta.covers,
        at,
        string_maps,
        token_maps,
        placed,
        tokens,
    };
    Ok(Some((known, table)))
}

/// One segment's tables, read back.
struct Read {
    strings: StringChunked,
    tokens: StringChunked,
    string_maps: Vec<u32>,
    token_maps: Vec<u32>,
}

/// The tables of `segment`, each checked against its digest and count, read side by side.
fn read_segment(dir: &Path, segment: &Segment) -> Result<Read> {
    let [s, t, sm, tm] = TABLES.map(|table| dir.join(file_name(segment.id, table)));
    let checked = |path: &Path| -> Result<()> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let want = (name.and_then(|n| segment.digests.get(&n)))
            .ok_or_else(|| broken(path, "no digest listed"))?;
        manifest::check_digest(path, want, "")
    };
    let text = |path: &Path, count: u64| -> Result<StringChunked> {
        checked(path)?;
        let t = texts(path)?;
        counted(path, t.len(), count).map(|_| t)
    };
    let code = |path: &Path, count: u64| -> Result<Vec<u32>> {
        checked(path)?;
        let c = codes(path)?;
        counted(path, c.len(), count).map(|_| c)
    };
    let ((strings, string_maps), (tokens, token_maps)) = rayon::join(
        || {
            rayon::join(
                || text(&s, segment.strings),
                || code(&sm, segment.string_maps),
            )
        },
        || {
            rayon::join(
                || text(&t, segment.tokens),
                || code(&tm, segment.token_maps),
            )
        },
    );
    Ok(Read {
        strings: strings?,
        tokens: tokens?,
        string_maps: string_maps?,
        token_maps: token_maps?,
    })
}

fn counted(path: &Path, held: usize, listed: u64) -> Result<()> {
    match held as u64 == listed {
        true => Ok(()),
        false => Err(broken(
            path,
            format!("{held} rows where {listed} are listed"),
        )),
    }
}

fn read_meta(dir: &Path) -> Result<Option<Meta>> {
    let path = dir.join(META);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let unusable = |reason: String| Error::State {
        path: path.clone(),
        reason,
    };
    let meta: Meta =
        serde_json::from_str(&text).map_err(|e| unusable(format!("unreadable: {e}")))?;
    if meta.format != FORMAT || meta.version != VERSION {
        return Err(unusable(format!(
            "{} version {}, this build keeps {FORMAT} version {VERSION}",
            meta.format, meta.version
        )));
    }
    Ok(Some(meta))
}

/// Makes the names cover `parts` (every retained partition with both lists, in the manifest's
/// order), read back through `known` (`None`: none were used) into the run's token table
/// `tokens`: a segment of the partitions `known` does not cover, or all of them written again
/// when there is no `known` or it is worn; only the list of partitions when none is new.
pub fn save(state: &Path, known: Option<&Known>, parts: &[Part], tokens: &Tokens) -> Result<()> {
    let dir = state.join(DIR);
    if parts.is_empty() && known.is_none() {
        return Ok(());
    }
    // Past every segment on disk, named or not: a file of a segment still named is never
    // written over before the `names.json` that stops naming it is in place.
    let next_id = next_segment(&dir)?;
    let (mut segments, mut covers, fresh) = match known {
        Some(k) => {
            let kept: Vec<&Cover> = (parts.iter())
                .filter_map(|p| k.cover(p.partition, p.digest))
                .collect();
            let fresh: Vec<&Part> = (parts.iter())
                .filter(|p| k.cover(p.partition, p.digest).is_none())
                .collect();
            if fresh.is_empty() && kept.len() == k.covers.len() {
                return Ok(());
            } else if k.worn(&kept) {
                (Vec::new(), Vec::new(), parts.iter().collect())
            } else {
                let kept = kept.into_iter().cloned().collect();
                (k.segments.clone(), kept, fresh)
            }
        }
        None => (Vec::new(), Vec::new(), parts.iter().collect()),
    };
    if !fresh.is_empty() {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        // Appended to the segments kept, numbered after them; or the first.
        let base = if segments.is_empty() { None } else { known };
        let (segment, added) = write_segment(&dir, next_id, base, &segments, &fresh, tokens)?;
        segments.push(segment);
        covers.extend(added);
    }
    let meta = Meta {
        format: FORMAT.into(),
        version: VERSION,
        segments,
        covers,
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let tmp = dir.join(format!("{META}.tmp"));
    super::write_synced(&tmp, &meta)?;
    let path = dir.join(META);
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    let named: HashSet<String> = (meta.segments.iter())
        .flat_map(|s| TABLES.map(|t| file_name(s.id, t)))
        .chain([META.to_string()])
        .collect();
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !named.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Writes segment `id` holding the lists of `parts`, numbered after the `segments` before it
/// (read back as `base`; `None`: the first segment, numbered from the parts alone), and the
/// covers of those parts.
fn write_segment(
    dir: &Path,
    id: u64,
    base: Option<&Known>,
    segments: &[Segment],
    parts: &[&Part],
    tokens: &Tokens,
) -> Result<(Segment, Vec<Cover>)> {
    let total = |f: fn(&Segment) -> u64| segments.iter().map(f).sum::<u64>();
    let string_maps_before = total(|s| s.string_maps);
    let token_maps_before = total(|s| s.token_maps);
    // Strings: polars' codes, numbered after the state's own. Token ids: the run's codes are the
    // state's, the ids it did not hold coming after them (the table started with them, and only
    // partitions not covered placed ids).
    // The kept segments' strings are `base`'s (none without one): the new ones come after them.
    let state_strings = base.map_or(&[][..], |k| &k.placed[..]);
    let (added_strings, string_maps) = renumber(state_strings, parts.iter().map(|p| p.strings));
    let (token_ids, token_maps) = match base {
        Some(k) => {
            let ids: Vec<u32> = (k.tokens as u32..tokens.len() as u32).collect();
            (ids, parts.iter().flat_map(|p| p.tokens).copied().collect())
        }
        None => renumber(&[], parts.iter().map(|p| p.tokens)),
    };
    let mut covers = Vec::with_capacity(parts.len());
    let (mut s_at, mut t_at) = (string_maps_before, token_maps_before);
    for p in parts {
        let (strings, tokens) = (p.strings.len() as u64, p.tokens.len() as u64);
        covers.push(Cover {
            partition: p.partition.to_string(),
            digest: p.digest.to_string(),
            strings_at: s_at,
            strings,
            tokens_at: t_at,
            tokens,
        });
        (s_at, t_at) = (s_at + strings, t_at + tokens);
    }
    let mapping = dictionary();
    let mut texts = StringChunkedBuilder::new("name".into(), added_strings.len());
    for &c in &added_strings {
        texts.append_value(mapping.name(c).unwrap_or_default());
    }
    let mut ids = StringChunkedBuilder::new("name".into(), token_ids.len());
    tokens.for_codes(&token_ids, |id| ids.append_value(id));
    let mut segment = Segment {
        id,
        strings: added_strings.len() as u64,
        tokens: token_ids.len() as u64,
        string_maps: string_maps.len() as u64,
        token_maps: token_maps.len() as u64,
        digests: BTreeMap::new(),
    };
    let columns = [
        texts.finish().into_column(),
        ids.finish().into_column(),
        Column::new("code".into(), string_maps),
        Column::new("code".into(), token_maps),
    ];
    for (table, column) in TABLES.iter().zip(columns) {
        let name = file_name(id, table);
        let path = dir.join(&name);
        crate::frame::write_lz4(&path, vec![column], |e| broken(&path, e))?;
        segment.digests.insert(name, manifest::digest(&path)?);
    }
    Ok((segment, covers))
}

/// One past the highest segment id of the files in `dir` (0 for none).
fn next_segment(dir: &Path) -> Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut next = 0;
    for entry in entries {
        let name = entry.map_err(|e| Error::io(dir, e))?.file_name();
        let id = (name.to_string_lossy().strip_prefix('s'))
            .and_then(|n| n.split('.').next().map(str::to_string))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            next = next.max(id + 1);
        }
    }
    Ok(next)
}

fn file_name(id: u64, table: &str) -> String {
    format!("s{id:08}.{table}")
}

/// The distinct codes of `lists` not in `numbered` (codes already at those positions), in order
/// of first appearance, and each list's codes as positions, back to back: `numbered`'s own, then
/// the new ones after them in that order.
fn renumber<'a>(
    numbered: &'a [u32],
    lists: impl Iterator<Item = &'a [u32]> + Clone,
) -> (Vec<u32>, Vec<u32>) {
    let top = (lists.clone().flatten().chain(numbered))
        .max()
        .map_or(0, |&c| c as usize + 1);
    let mut position = vec![NULL; top];
    for (i, &c) in numbered.iter().enumerate() {
        if position[c as usize] == NULL {
            position[c as usize] = i as u32;
        }
    }
    let (mut order, mut maps) = (Vec::new(), Vec::new());
    for &c in lists.flatten() {
        let at = &mut position[c as usize];
        if *at == NULL {
            *at = (numbered.len() + order.len()) as u32;
            order.push(c);
        }
        maps.push(*at);
    }
    (order, maps)
}

fn read_table(path: &Path) -> Result<DataFrame> {
    crate::frame::read_parquet(path, |e| broken(path, e))
}

/// The codes of the table at `path`.
fn codes(path: &Path) -> Result<Vec<u32>> {
    let df = read_table(path)?;
    let column = df.column("code").and_then(|c| c.u32().cloned());
    let column = column.map_err(|e| broken(path, e))?;
    if column.null_count() > 0 {
        return Err(broken(path, "an empty code"));
    }
    Ok(column.into_no_null_iter().collect())
}

/// The names of the table at `path`.
fn texts(path: &Path) -> Result<StringChunked> {
    let df = read_table(path)?;
    let column = df.column("name").and_then(|c| c.str().cloned());
    let column = column.map_err(|e| broken(path, e))?;
    if column.null_count() > 0 {
        return Err(broken(path, "an empty name"));
    }
    Ok(column)
}

/// The names of `tables`, in order.
fn each(tables: &[StringChunked]) -> impl Iterator<Item = &str> {
    (tables.iter())
        .flat_map(|t| t.downcast_iter())
        .flat_map(|arr| arr.values_iter())
}

fn broken(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::State {
        path: path.to_path_buf(),
        reason: format!("names unreadable: {e}"),
    }
}

#[cfg(test)]
mod tests;
