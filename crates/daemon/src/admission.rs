//! Places for the daemon's stream connections (the control socket, NTS-KE): a bounded number in
//! each pool, and a few per user where the server asks for it. A connection still waiting for its
//! client's request gives way to a newer one when its pool or its user's share is full, so idle
//! or slow clients cannot keep new ones out, and the count of descriptors stays bounded. No I/O.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// A pool of places: connections sharing one `id` are at most `places`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pool {
    pub id: u8,
    pub places: usize,
}

/// One user's share of its pool: at most `places` of its connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Share {
    pub uid: u32,
    pub places: usize,
}

struct Entry {
    /// Increases with each connection admitted: the smallest is the oldest.
    id: u64,
    pool: u8,
    uid: Option<u32>,
    /// Still waiting for the client's request (so it may give way).
    waiting: bool,
    evict: Arc<Notify>,
}

struct Table {
    next_id: u64,
    entries: Vec<Entry>,
}

impl Table {
    /// Makes room among the entries `in_group` when they number `places` or more: the oldest
    /// still waiting gives way. False when all of them are being answered.
    fn make_room(&mut self, places: usize, in_group: impl Fn(&Entry) -> bool) -> bool {
        if self.entries.iter().filter(|e| in_group(e)).count() < places {
            return true;
        }
        let oldest = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.waiting && in_group(e))
            .min_by_key(|(_, e)| e.id)
            .map(|(at, _)| at);
        match oldest {
            Some(at) => {
                self.entries.swap_remove(at).evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// The connections served by one server, shared by its accept loop and its connections' tasks.
#[derive(Clone)]
pub(crate) struct Admission(Arc<Mutex<Table>>);

impl Admission {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Mutex::new(Table { next_id: 0, entries: Vec::new() })))
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place in `pool` (and in the user's `share`, if any) for a connection just accepted,
    /// made if need be by the oldest one still waiting in the share, then in the pool; `None`
    /// when those are all being answered.
    pub(crate) fn admit(&self, pool: Pool, share: Option<Share>) -> Option<Place> {
        let mut table = self.table();
        if let Some(share) = share
            && !table.make_room(share.places, |e| e.pool == pool.id && e.uid == Some(share.uid))
        {
            return None;
        }
        if !table.make_room(pool.places, |e| e.pool == pool.id) {
            return None;
        }
        let id = table.next_id;
        table.next_id += 1;
        let evict = Arc::new(Notify::new());
        let uid = share.map(|s| s.uid);
        table.entries.push(Entry { id, pool: pool.id, uid, waiting: true, evict: evict.clone() });
        Some(Place { admission: self.clone(), id, evict })
    }

    /// Connections holding a place.
    #[cfg(test)]
    pub(crate) fn served(&self) -> usize {
        self.table().entries.len()
    }
}

/// One connection's place, given up when dropped.
pub(crate) struct Place {
    admission: Admission,
    id: u64,
    evict: Arc<Notify>,
}

impl Place {
    /// The client's request is in: from now on the place is kept until the connection ends.
    /// False when it had already been given to a newer connection.
    pub(crate) fn answering(&self) -> bool {
        let mut table = self.admission.table();
        let entry = table.entries.iter_mut().find(|e| e.id == self.id);
        entry.map(|e| e.waiting = false).is_some()
    }

    /// Completes when the connection must give its place to a newer one.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }

    /// Whether it has been told to give its place away (a test's look, without waiting).
    #[cfg(test)]
    pub(crate) async fn was_evicted(&self) -> bool {
        tokio::time::timeout(std::time::Duration::ZERO, self.evicted()).await.is_ok()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut table = self.admission.table();
        if let Some(at) = table.entries.iter().position(|e| e.id == self.id) {
            table.entries.swap_remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: Pool = Pool { id: 0, places: 4 };

    #[tokio::test]
    async fn a_full_pool_takes_a_newcomer_in_place_of_its_oldest_waiting_connection() {
        let admission = Admission::new();
        let places: Vec<Place> = (0..6).filter_map(|_| admission.admit(POOL, None)).collect();
        assert_eq!(places.len(), 6);
        assert_eq!(admission.served(), 4);
        for (n, place) in places.iter().enumerate() {
            assert_eq!(place.was_evicted().await, n < 2, "place {n}");
        }
        assert!(!places[0].answering(), "a place given away is not answered from");
        assert!(places[2].answering());
        // The oldest waiting one goes, not the one being answered.
        let _newer = admission.admit(POOL, None).unwrap();
        assert!(!places[2].was_evicted().await && places[3].was_evicted().await);
    }

    #[tokio::test]
    async fn when_every_place_is_being_answered_a_newcomer_is_refused_until_one_ends() {
        let admission = Admission::new();
        let mut places: Vec<Place> = (0..4).filter_map(|_| admission.admit(POOL, None)).collect();
        assert!(places.iter().all(Place::answering));
        assert!(admission.admit(POOL, None).is_none());
        assert!(admission.admit(Pool { id: 1, places: 1 }, None).is_some(), "pools are apart");
        places.pop();
        assert!(admission.admit(POOL, None).is_some());
    }

    #[tokio::test]
    async fn a_users_connections_make_way_for_its_own_newer_ones_only() {
        let admission = Admission::new();
        let pool = Pool { id: 0, places: 10 };
        let share = |uid| Some(Share { uid, places: 2 });
        let mine: Vec<Place> = (0..5).filter_map(|_| admission.admit(pool, share(1000))).collect();
        assert_eq!((mine.len(), admission.served()), (5, 2));
        let theirs = admission.admit(pool, share(1001)).unwrap();
        assert!(!theirs.was_evicted().await && !mine[4].was_evicted().await);
        assert!(mine[2].was_evicted().await);
        assert_eq!(admission.served(), 3);
    }
}
