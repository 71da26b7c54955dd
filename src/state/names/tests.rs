use super::*;

/// polars' codes of `strings`, placed as a partition's listing places them.
fn placed(strings: &[&str]) -> Vec<u32> {
    let mapping = dictionary();
    (strings.iter())
        .map(|s| mapping.insert(s).expect("placed"))
        .collect()
}

fn part<'a>(name: &'a str, digest: &'a str, strings: &'a [u32], tokens: &'a [u32]) -> Part<'a> {
    Part {
        partition: name,
        digest,
        strings,
        tokens,
    }
}

/// The files of the names folder, sorted.
fn files(state: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(state.join(DIR))
        .expect("names")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Night after night: the first run's lists come back as placed; a new partition's are listed
/// into the table the names started and appended as a segment; a night with nothing new writes
/// nothing; a partition that leaves is no longer covered, its names kept; a partition whose
/// digest changed is not covered; a damaged segment is refused by name.
#[test]
fn nights_append_segments_that_read_back_as_placed() {
    // As `main` does: polars drops its dictionary with the last reference to it.
    let _kept = dictionary();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path();
    let run = Tokens::default();
    let t1 = run.place(["tk-a", "tk-b"].into_iter()).expect("ids");
    let s1 = placed(&["names-test-ann", "names-test-ben", "access"]);
    save(state, None, &[part("p1", "d1", &s1, &t1)], &run).expect("saved");
    assert!(load(state, &[("p9", "d9")]).expect("loads").is_none());

    let (known, table) = (load(state, &[("p1", "d1"), ("p2", "d2")]))
        .expect("loads")
        .expect("names");
    assert_eq!(known.placed("p1", "d1"), Some((s1.clone(), t1.clone())));
    assert_eq!(known.placed("p1", "other"), None);
    assert_eq!(known.placed("p2", "d2"), None);
    let t2 = table.place(["tk-b", "tk-c"].into_iter()).expect("ids");
    assert_eq!(t2, [1, 2]);
    let s2 = placed(&["names-test-ben", "names-test-cid"]);
    let both = [part("p1", "d1", &s1, &t1), part("p2", "d2", &s2, &t2)];
    save(state, Some(&known), &both, &table).expect("saved");
    assert_eq!(files(state).len(), 9, "{:?}", files(state));

    let (known, table) = (load(state, &[("p1", "d1"), ("p2", "d2")]))
        .expect("loads")
        .expect("names");
    assert_eq!(known.placed("p1", "d1"), Some((s1.clone(), t1.clone())));
    assert_eq!(known.placed("p2", "d2"), Some((s2.clone(), t2.clone())));
    for (code, id) in [(0, "tk-a"), (1, "tk-b"), (2, "tk-c")] {
        assert_eq!(table.text(code).as_deref(), Some(id));
    }
    let meta = state.join(DIR).join(META);
    let before = std::fs::read(&meta).expect("meta");
    save(state, Some(&known), &both, &table).expect("saved");
    assert_eq!(std::fs::read(&meta).expect("meta"), before);

    save(state, Some(&known), &both[1..], &table).expect("saved");
    let (known, _) = (load(state, &[("p2", "d2")]))
        .expect("loads")
        .expect("names");
    assert_eq!(known.placed("p2", "d2"), Some((s2, t2)));
    assert_eq!(known.placed("p1", "d1"), None);
    assert_eq!(files(state).len(), 9, "{:?}", files(state));

    let segment = state.join(DIR).join(file_name(1, TABLES[2]));
    let mut bytes = std::fs::read(&segment).expect("segment");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&segment, &bytes).expect("damaged");
    let refused = load(state, &[("p2", "d2")]).err().expect("refused");
    assert!(refused.to_string().contains("s00000001"), "{refused}");
}

/// Once the segments hold more than twice the names the retained partitions use (past the
/// spare), they are written again as one segment, renumbered, and the old files go.
#[test]
fn worn_names_are_written_again_as_one_segment() {
    let _kept = dictionary();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path();
    let many: Vec<String> = (0..SPARE + 8).map(|i| format!("names-worn-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let run = Tokens::default();
    let t1 = run.place(["tk-old"].into_iter()).expect("ids");
    let t2 = run.place(["tk-new"].into_iter()).expect("ids");
    let (s1, s2) = (placed(&many), placed(&["names-worn-kept"]));
    let both = [part("p1", "d1", &s1, &t1), part("p2", "d2", &s2, &t2)];
    save(state, None, &both, &run).expect("saved");
    let (known, table) = (load(state, &[("p1", "d1"), ("p2", "d2")]))
        .expect("loads")
        .expect("names");
    save(state, Some(&known), &both[1..], &table).expect("saved");
    let want: Vec<String> = (TABLES.iter().map(|t| file_name(1, t)))
        .chain([META.to_string()])
        .collect();
    let mut want = want;
    want.sort();
    assert_eq!(files(state), want);
    let (known, table) = (load(state, &[("p2", "d2")]))
        .expect("loads")
        .expect("names");
    assert_eq!(known.placed("p2", "d2"), Some((s2, vec![0])));
    assert_eq!(known.placed.len(), 1);
    assert_eq!(table.text(0).as_deref(), Some("tk-new"));
}

/// A `names.json` whose offsets lie outside the maps, or overflow, is refused, not trusted.
#[test]
fn offsets_outside_the_maps_are_refused() {
    let _kept = dictionary();
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path();
    let run = Tokens::default();
    let t1 = run.place(["tk-x"].into_iter()).expect("ids");
    let s1 = placed(&["names-offsets-ann"]);
    save(state, None, &[part("p1", "d1", &s1, &t1)], &run).expect("saved");
    let meta = state.join(DIR).join(META);
    let text = std::fs::read_to_string(&meta).expect("meta");
    for bad in ["18446744073709551615", "7"] {
        let edited = text.replacen("\"strings_at\": 0", &format!("\"strings_at\": {bad}"), 1);
        assert_ne!(edited, text, "{text}");
        std::fs::write(&meta, &edited).expect("edited");
        let refused = load(state, &[("p1", "d1")]).err().expect("refused");
        assert!(refused.to_string().contains("outside"), "{refused}");
    }
}
