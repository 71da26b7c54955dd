//! Incidents: ranked rows that belong to one story. A key, the addresses that used it, their /24
//! and the key's departed custodian are one incident, not four; the summary tells it once.
//! Rows are linked through the `related` entities the detectors name, and every address is
//! linked to its network.

use std::collections::BTreeMap;

use super::Ranked;
use crate::detect::{Entity, EntityKind};
use crate::normalize::columns::network_of;

/// One incident: indices into the ranking, best first; its rank is that of its best row.
#[derive(Debug, Clone)]
pub struct Incident {
    pub number: usize,
    pub rows: Vec<usize>,
}

/// Groups rows into incidents (connected components), numbered in rank order.
pub fn incidents(ranked: &[Ranked]) -> Vec<Incident> {
    let mut ids: BTreeMap<Entity, usize> = BTreeMap::new();
    let mut parent: Vec<usize> = Vec::new();
    let mut node = |e: &Entity, parent: &mut Vec<usize>| -> usize {
        *ids.entry(e.clone()).or_insert_with(|| {
            parent.push(parent.len());
            parent.len() - 1
        })
    };
    let mut row_nodes = Vec::with_capacity(ranked.len());
    let mut edges = Vec::new();
    for r in ranked {
        let a = node(&r.entity, &mut parent);
        row_nodes.push(a);
        let mut linked: Vec<Entity> = r.related.clone();
        if r.entity.kind == EntityKind::SourceIp
            && let Some(net) = network_of(&r.entity.id)
        {
            linked.push(Entity::new(EntityKind::Network, net));
        }
        for e in &r.related {
            if e.kind == EntityKind::SourceIp
                && let Some(net) = network_of(&e.id)
            {
                linked.push(Entity::new(EntityKind::Network, net));
            }
        }
        for e in linked {
            let b = node(&e, &mut parent);
            edges.push((a, b));
        }
    }
    for (a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, n) in row_nodes.iter().enumerate() {
        let root = find(&mut parent, *n);
        groups.entry(root).or_default().push(i);
    }
    let mut out: Vec<Incident> = groups
        .into_values()
        .map(|rows| Incident { number: 0, rows })
        .collect();
    out.sort_by_key(|inc| inc.rows[0]);
    for (i, inc) in out.iter_mut().enumerate() {
        inc.number = i + 1;
    }
    out
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}
