use std::collections::BTreeSet;

use super::*;
use crate::frame::random;
use crate::normalize::cold::{IN_FRAME, tests::beside};
use crate::normalize::columns::network_of;

/// Some entities of every kind that `events` holds (every third of each, from `offset`), their
/// networks, and one that holds no row.
fn picked(events: &DataFrame, offset: usize) -> Vec<Entity> {
    let mut entities = vec![Entity::new(EntityKind::Principal, "nobody")];
    for kind in [
        EntityKind::Credential,
        EntityKind::Principal,
        EntityKind::SourceIp,
    ] {
        let all: BTreeSet<String> = strs(events, kind.column())
            .expect("names")
            .into_iter()
            .collect();
        let named = all.iter().filter(|id| !id.is_empty());
        entities.extend(
            named
                .skip(offset)
                .step_by(3)
                .map(|id| Entity::new(kind, id.clone())),
        );
    }
    let networks: BTreeSet<String> = (strs(events, c::SOURCE_IP).expect("addresses").iter())
        .filter_map(|ip| network_of(ip))
        .collect();
    entities.extend(
        networks
            .into_iter()
            .step_by(2)
            .map(|n| Entity::new(EntityKind::Network, n)),
    );
    entities
}

/// Differential: the endpoints and clients counted in one pass over the frame's chunks equal
/// polars' group-by of each entity's rows (what the pass replaced), for every kind (a network
/// found by its addresses), with the cold columns in the frame or beside it (held, and on disk),
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
            for spill_from in [u64::MAX, 1000] {
                let at = dir.path().join(format!("{seed}-{way}-{spill_from}"));
                std::fs::create_dir(&at).expect("dir");
                let (hot, cold) = beside(frame, &at, spill_from);
                let got = usage(&hot, &cold, &entities).expect("usage");
                assert!(got == want, "seed {seed}, {way}, beside ({spill_from})");
            }
        }
    }
}
