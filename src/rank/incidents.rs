//! Incidents: ranked rows that belong to one story. A key, the addresses that used it, their /24
//! and the key's departed custodian are one incident, not four; the table, the summary and the
//! charts tell it once, at the place of its strongest row.
//!
//! Rows are linked only through the `related` entities the detectors name (a key's addresses and
//! custodian, a principal's addresses, a network's top addresses by access). Sharing a /24 is not
//! a link: a departed person's laptop retrying from one address and a forger reading accounts
//! from another of the same /24 are two incidents, as are two insiders in one office network.

use std::collections::BTreeMap;

use super::Ranked;
use crate::detect::Entity;

/// One incident: indices into the ordered rows (contiguous, best first).
#[derive(Debug, Clone)]
pub struct Incident {
    pub number: usize,
    pub rows: Vec<usize>,
}

/// Groups rows into incidents (connected components) and orders the table by them: incidents by
/// their best row's score, each incident's rows together, best first. Sets `rank` (table
/// position) and `incident` on every row.
pub fn group(rows: Vec<Ranked>) -> (Vec<Ranked>, Vec<Incident>) {
    let components = components(&rows);
    let mut groups: BTreeMap<usize, Vec<Ranked>> = BTreeMap::new();
    for (row, c) in rows.into_iter().zip(components) {
        groups.entry(c).or_default().push(row);
    }
    let order = |a: &Ranked, b: &Ranked| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.entity.cmp(&b.entity))
    };
    let mut groups: Vec<Vec<Ranked>> = groups.into_values().collect();
    for g in &mut groups {
        g.sort_by(order);
    }
    groups.sort_by(|a, b| order(&a[0], &b[0]));
    let mut out = Vec::new();
    let mut incidents = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        let start = out.len();
        for mut row in g {
            row.incident = i + 1;
            row.rank = out.len() + 1;
            out.push(row);
        }
        incidents.push(Incident {
            number: i + 1,
            rows: (start..out.len()).collect(),
        });
    }
    (out, incidents)
}

/// The component of each row (union-find over rows and the entities they name).
fn components(rows: &[Ranked]) -> Vec<usize> {
    let mut ids: BTreeMap<Entity, usize> = BTreeMap::new();
    let mut parent: Vec<usize> = Vec::new();
    let mut node = |e: &Entity, parent: &mut Vec<usize>| -> usize {
        *ids.entry(e.clone()).or_insert_with(|| {
            parent.push(parent.len());
            parent.len() - 1
        })
    };
    let mut row_nodes = Vec::with_capacity(rows.len());
    let mut edges = Vec::new();
    for r in rows {
        let a = node(&r.entity, &mut parent);
        row_nodes.push(a);
        for e in &r.related {
            let b = node(e, &mut parent);
            edges.push((a, b));
        }
    }
    for (a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    row_nodes
        .into_iter()
        .map(|n| find(&mut parent, n))
        .collect()
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}
