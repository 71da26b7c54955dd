use std::collections::BTreeSet;

use super::*;
use crate::frame::random;
use crate::normalize::cold::IN_FRAME;
use crate::reduce::tests::beside;

/// Some entities of every kind that `events` holds, and one that holds no row.
fn picked(events: &DataFrame, offset: usize) -> Vec<Entity> {
    let mut entities = vec![Entity::new(EntityKind::Principal, "nobody")];
    for kind in [
        EntityKind::Credential,
        EntityKind::Principal,
        EntityKind::SourceIp,
    ] {
        let names = random::some_names(events, kind.column(), offset);
        entities.extend(names.into_iter().map(|id| Entity::new(kind, id)));
    }
    let networks = random::some_networks(events).into_iter();
    entities.extend(networks.map(|n| Entity::new(EntityKind::Network, n)));
    entities
}

/// Differential: the endpoints and clients counted in one pass over the frame's chunks equal
/// polars' group-by of each entity's rows (what the pass replaced), for every kind (a network
/// found by its addresses), with the cold columns in the frame or beside it (on disk, in pieces),
/// the keys wide or in one byte; an entity with no row is left out, as one whose rows name no
/// endpoint and no client.
#[test]
fn usage_agrees_with_polars_group_bys() {
    let dir = tempfile::tempdir().expect("temp dir");
    for seed in 0..4 {
        let full = random::events(seed, 3000);
        let entities = picked(&full, seed as usize % 3);
        let want = usage_by_polars(&full, &entities).expect("polars");
        let kinds: BTreeSet<EntityKind> = want.keys().map(|e| e.kind).collect();
        assert_eq!(kinds.len(), 4, "seed {seed}: every kind has usage");
        assert!(!want.contains_key(&entities[0]), "nobody has no usage");
        let mut narrow = full.clone();
        crate::frame::keys::narrow(&mut narrow, c::CREDENTIAL, 64, 255).expect("narrowed");
        for (way, frame) in [("wide", &full), ("one byte", &narrow)] {
            let got = usage(frame, &IN_FRAME, &entities).expect("usage");
            assert!(
                got == want,
                "seed {seed}, {way}, in the frame:\n{got:?}\n{want:?}"
            );
            let at = dir.path().join(format!("{seed}-{way}"));
            std::fs::create_dir(&at).expect("dir");
            let (hot, cold) = beside(frame, &at, &[700, 13, 251]);
            let got = usage(&hot, &cold, &entities).expect("usage");
            assert!(got == want, "seed {seed}, {way}, beside the frame");
        }
    }
}
