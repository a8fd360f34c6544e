//! Source selection (RFC 5905 section 11.2): the intersection algorithm finds the largest group of
//! sources whose error intervals agree and casts out falsetickers; clustering trims the survivors
//! to the most consistent; combining averages them into one offset. Sources are named by their
//! identity. No I/O.

use crate::source::SourceId;

/// Clustering stops at this many survivors (RFC 5905 NMIN).
const MIN_CLUSTER: usize = 3;

/// A source that passed the fit test, as selection sees it. Seconds throughout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub id: SourceId,
    pub offset: f64,
    /// Root distance: half-width of the interval that must contain true time.
    pub root_distance: f64,
    pub jitter: f64,
    /// Ordering for the system peer: smaller is better (stratum first, then distance).
    pub merit: f64,
}

/// The outcome of one selection.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Survivors, best merit first; the system peer among them.
    pub survivors: Vec<SourceId>,
    /// Candidates outside the agreeing majority.
    pub falsetickers: Vec<SourceId>,
    /// Candidates that agreed but were clustered out as outliers.
    pub outliers: Vec<SourceId>,
    pub system_peer: SourceId,
    /// Weighted average offset of the survivors.
    pub offset: f64,
    /// Spread of the survivors around the peer, combined with the peer's own jitter.
    pub jitter: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Edge {
    Lower,
    Middle,
    Upper,
}

/// Selects among `candidates`; keeps `previous_peer` as system peer while it survives. `None` when
/// no majority agrees.
pub fn select(candidates: &[Candidate], previous_peer: Option<SourceId>) -> Option<Selection> {
    let (low, high) = intersection(candidates)?;
    let (mut survivors, falsetickers): (Vec<&Candidate>, Vec<&Candidate>) = candidates
        .iter()
        .partition(|c| c.offset + c.root_distance >= low && c.offset - c.root_distance <= high);
    if survivors.is_empty() {
        return None;
    }
    survivors.sort_by(|a, b| a.merit.total_cmp(&b.merit));
    let mut outliers = Vec::new();
    while survivors.len() > MIN_CLUSTER {
        let selection_jitter = |i: usize| {
            let own = survivors[i].offset;
            let sum: f64 = survivors.iter().map(|s| (s.offset - own).powi(2)).sum();
            (sum / (survivors.len() - 1) as f64).sqrt()
        };
        let (worst, worst_jitter) = (0..survivors.len())
            .map(|i| (i, selection_jitter(i)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let least_peer_jitter = survivors.iter().map(|s| s.jitter).fold(f64::INFINITY, f64::min);
        if worst_jitter < least_peer_jitter {
            break;
        }
        outliers.push(survivors.remove(worst).id);
    }

    let peer =
        previous_peer.and_then(|p| survivors.iter().find(|s| s.id == p)).unwrap_or(&survivors[0]);
    let weight = |c: &Candidate| 1.0 / c.root_distance.max(1e-9);
    let total_weight: f64 = survivors.iter().map(|c| weight(c)).sum();
    let offset = survivors.iter().map(|c| weight(c) * c.offset).sum::<f64>() / total_weight;
    let spread =
        survivors.iter().map(|c| weight(c) * (c.offset - peer.offset).powi(2)).sum::<f64>()
            / total_weight;
    Some(Selection {
        survivors: survivors.iter().map(|c| c.id).collect(),
        falsetickers: falsetickers.iter().map(|c| c.id).collect(),
        outliers,
        system_peer: peer.id,
        offset,
        jitter: (spread + peer.jitter.powi(2)).sqrt(),
    })
}

/// The smallest interval contained in the intervals of a majority of candidates, allowing ever
/// more falsetickers up to fewer than half (Marzullo's algorithm as RFC 5905 refines it).
fn intersection(candidates: &[Candidate]) -> Option<(f64, f64)> {
    let n = candidates.len();
    let mut edges: Vec<(f64, Edge)> = candidates
        .iter()
        .flat_map(|c| {
            [
                (c.offset - c.root_distance, Edge::Lower),
                (c.offset, Edge::Middle),
                (c.offset + c.root_distance, Edge::Upper),
            ]
        })
        .collect();
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut allow = 0;
    while 2 * allow < n {
        let mut found = 0;
        let (mut low, mut high) = (None, None);
        let mut chime = 0usize;
        for &(value, edge) in &edges {
            match edge {
                Edge::Lower => chime += 1,
                Edge::Upper => chime = chime.saturating_sub(1),
                Edge::Middle => {}
            }
            if chime >= n - allow {
                low = Some(value);
                break;
            }
            if edge == Edge::Middle {
                found += 1;
            }
        }
        chime = 0;
        for &(value, edge) in edges.iter().rev() {
            match edge {
                Edge::Upper => chime += 1,
                Edge::Lower => chime = chime.saturating_sub(1),
                Edge::Middle => {}
            }
            if chime >= n - allow {
                high = Some(value);
                break;
            }
            if edge == Edge::Middle {
                found += 1;
            }
        }
        if found <= allow
            && let (Some(low), Some(high)) = (low, high)
            && high >= low
        {
            return Some((low, high));
        }
        allow += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> SourceId {
        SourceId::new(n)
    }

    fn candidate(n: u64, offset: f64, root_distance: f64) -> Candidate {
        Candidate {
            id: id(n),
            offset,
            root_distance,
            jitter: 0.001,
            merit: 2.0 * 1.5 + root_distance,
        }
    }

    #[test]
    fn one_source_is_selected_alone() {
        let selection = select(&[candidate(0, 0.002, 0.01)], None).unwrap();
        assert_eq!(selection.survivors, vec![id(0)]);
        assert_eq!(selection.system_peer, id(0));
        assert_eq!(selection.offset, 0.002);
    }

    #[test]
    fn a_falseticker_is_cast_out() {
        let candidates = [
            candidate(0, 0.001, 0.010),
            candidate(1, -0.002, 0.012),
            candidate(2, 0.000, 0.015),
            candidate(3, 0.500, 0.010), // half a second off
        ];
        let selection = select(&candidates, None).unwrap();
        assert_eq!(selection.falsetickers, vec![id(3)]);
        assert!(!selection.survivors.contains(&id(3)));
        assert!(selection.offset.abs() < 0.002);
    }

    #[test]
    fn two_disagreeing_sources_have_no_majority() {
        let candidates = [candidate(0, 0.0, 0.01), candidate(1, 1.0, 0.01)];
        assert_eq!(select(&candidates, None), None);
    }

    #[test]
    fn two_against_one() {
        let candidates =
            [candidate(0, 0.0, 0.01), candidate(1, 1.0, 0.01), candidate(2, 0.005, 0.01)];
        let selection = select(&candidates, None).unwrap();
        assert_eq!(selection.falsetickers, vec![id(1)]);
    }

    #[test]
    fn the_best_merit_is_peer_and_the_old_peer_is_kept_while_it_survives() {
        let mut candidates = [candidate(0, 0.001, 0.020), candidate(1, 0.0015, 0.005)];
        assert_eq!(select(&candidates, None).unwrap().system_peer, id(1));
        assert_eq!(select(&candidates, Some(id(0))).unwrap().system_peer, id(0));
        candidates[0].merit = 100.0;
        assert_eq!(select(&candidates, Some(id(7))).unwrap().system_peer, id(1));
    }

    #[test]
    fn clustering_removes_the_most_scattered_beyond_three() {
        let mut candidates: Vec<Candidate> = [0.0, 0.0001, -0.0001, 0.0002, 0.004]
            .iter()
            .enumerate()
            .map(|(i, &o)| candidate(i as u64, o, 0.05))
            .collect();
        for c in &mut candidates {
            c.jitter = 0.0002;
        }
        let selection = select(&candidates, None).unwrap();
        assert!(selection.outliers.contains(&id(4)), "{selection:?}");
        assert!(selection.survivors.len() >= 3);
    }

    #[test]
    fn combining_weights_by_inverse_root_distance() {
        let candidates = [candidate(0, 0.010, 0.010), candidate(1, 0.0, 0.030)];
        let selection = select(&candidates, None).unwrap();
        assert!((selection.offset - 0.0075).abs() < 1e-12, "{}", selection.offset);
    }
}
