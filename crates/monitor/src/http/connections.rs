//! The HTTP server's table of open connections: at most a fixed number are open, each waits a
//! bounded time for its next request, and when the table is full the connection that has waited
//! longest gives way to the new one, so silent or slow clients cannot lock the others out. The
//! time is passed in; no I/O.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// From accept to a complete first request head.
pub(super) const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// From a response to the next complete request head (keep-alive).
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// The least time between two warnings that the table is full.
const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// The cap for a process allowed `open_files` descriptors (None: no limit): an eighth of them,
/// at most 64 (a hub has a few dashboards and scrapers) and at least 8.
pub fn connection_cap(open_files: Option<u64>) -> usize {
    let share = open_files.map_or(u64::MAX, |limit| limit / 8);
    share.clamp(8, 64) as usize
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepted at this instant; no complete request yet.
    New(Instant),
    /// A request is being answered.
    Busy,
    /// Answered at this instant; waiting for the next request.
    Idle(Instant),
}

impl Phase {
    /// Since when it has been waiting for a request, if it is.
    fn waiting_since(self) -> Option<Instant> {
        match self {
            Self::New(since) | Self::Idle(since) => Some(since),
            Self::Busy => None,
        }
    }

    /// When it is closed unless a complete request head arrives.
    fn deadline(self) -> Option<Instant> {
        match self {
            Self::New(since) => Some(since + FIRST_REQUEST_TIMEOUT),
            Self::Idle(since) => Some(since + IDLE_TIMEOUT),
            Self::Busy => None,
        }
    }
}

struct Entry {
    id: u64,
    phase: Phase,
    /// Notified when the connection must close to make room.
    evict: Arc<Notify>,
}

/// What happened when the table was full, told at most once a minute: the counts since the last
/// time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Crowding {
    /// Connections open: the cap.
    pub open: usize,
    /// Waiting connections closed to make room, since the last warning.
    pub evicted: u64,
    /// New connections closed at once because every open one was busy, since the last warning.
    pub refused: u64,
}

struct Table {
    cap: usize,
    next_id: u64,
    entries: Vec<Entry>,
    evicted: u64,
    refused: u64,
    last_warning: Option<Instant>,
}

impl Table {
    /// Counts a full-table event; the counts to warn about if a warning is due.
    fn crowded(&mut self, now: Instant) -> Option<Crowding> {
        let due = self.last_warning.is_none_or(|last| now >= last + WARNING_INTERVAL);
        if !due {
            return None;
        }
        self.last_warning = Some(now);
        let crowding = Crowding { open: self.cap, evicted: self.evicted, refused: self.refused };
        (self.evicted, self.refused) = (0, 0);
        Some(crowding)
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.entries.iter().position(|entry| entry.id == id)
    }
}

/// The open connections, shared by every listener of the server.
#[derive(Clone)]
pub(super) struct Connections(Arc<Mutex<Table>>);

impl Connections {
    pub(super) fn new(cap: usize) -> Self {
        Self(Arc::new(Mutex::new(Table {
            cap: cap.max(1),
            next_id: 0,
            entries: Vec::with_capacity(cap),
            evicted: 0,
            refused: 0,
            last_warning: None,
        })))
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a connection accepted at `now`, made if need be by evicting the connection
    /// that has waited longest for a request; `None` when every open connection is busy. The
    /// crowding, when the table was full and a warning is due.
    pub(super) fn admit(&self, now: Instant) -> (Option<Slot>, Option<Crowding>) {
        let mut table = self.table();
        let mut crowding = None;
        if table.entries.len() >= table.cap {
            let longest_waiting = table
                .entries
                .iter()
                .enumerate()
                .filter_map(|(at, entry)| Some((entry.phase.waiting_since()?, at)))
                .min();
            match longest_waiting {
                Some((_, at)) => {
                    table.entries.swap_remove(at).evict.notify_one();
                    table.evicted += 1;
                }
                None => {
                    table.refused += 1;
                    return (None, table.crowded(now));
                }
            }
            crowding = table.crowded(now);
        }
        let id = table.next_id;
        table.next_id += 1;
        let evict = Arc::new(Notify::new());
        table.entries.push(Entry { id, phase: Phase::New(now), evict: evict.clone() });
        (Some(Slot { connections: self.clone(), id, evict }), crowding)
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.table().entries.len()
    }
}

/// One connection's place in the table, given up when dropped.
pub(super) struct Slot {
    connections: Connections,
    id: u64,
    evict: Arc<Notify>,
}

impl Slot {
    fn set(&self, phase: Phase) {
        let mut table = self.connections.table();
        if let Some(at) = table.position(self.id) {
            table.entries[at].phase = phase;
        }
    }

    /// A complete request head arrived.
    pub(super) fn busy(&self) {
        self.set(Phase::Busy);
    }

    /// The answer was made at `now`; the connection waits for the next request.
    pub(super) fn idle(&self, now: Instant) {
        self.set(Phase::Idle(now));
    }

    /// When the connection is to be closed for want of a request: `None` while it is busy, or
    /// once evicted (it has been told through [`Slot::evicted`]).
    pub(super) fn deadline(&self) -> Option<Instant> {
        let table = self.connections.table();
        table.position(self.id).and_then(|at| table.entries[at].phase.deadline())
    }

    /// Completes when the connection must close to make room for a new one.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.connections.table();
        if let Some(at) = table.position(self.id) {
            table.entries.swap_remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_an_eighth_of_the_open_files_between_8_and_64() {
        assert_eq!(connection_cap(Some(1024)), 64);
        assert_eq!(connection_cap(Some(256)), 32);
        assert_eq!(connection_cap(Some(20)), 8);
        assert_eq!(connection_cap(None), 64);
    }

    /// Whether `slot` has been told to close.
    async fn told_to_close(slot: &Slot) -> bool {
        tokio::time::timeout(Duration::ZERO, slot.evicted()).await.is_ok()
    }

    #[tokio::test]
    async fn a_full_table_closes_the_connection_waiting_longest_and_warns_once_a_minute() {
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let connections = Connections::new(3);
        let (first, warned) = connections.admit(at(0));
        let first = first.unwrap();
        assert_eq!(warned, None);
        let second = connections.admit(at(1)).0.unwrap();
        let third = connections.admit(at(2)).0.unwrap();
        // The first sent its request and was answered last: the second has waited longest.
        first.busy();
        first.idle(at(3));
        third.busy();
        let (fourth, warned) = connections.admit(at(4));
        assert!(fourth.is_some());
        assert_eq!(warned, Some(Crowding { open: 3, evicted: 1, refused: 0 }));
        assert!(told_to_close(&second).await);
        assert_eq!(second.deadline(), None, "its place is gone");
        assert!(!told_to_close(&first).await && !told_to_close(&third).await);
        assert_eq!(connections.open(), 3);
        // Then the first (idle since 3 s, before the fourth came), with no warning this minute.
        let (_fifth, warned) = connections.admit(at(5));
        assert_eq!(warned, None);
        assert!(told_to_close(&first).await);
        drop((first, second));
        assert_eq!(connections.open(), 3);
    }

    #[test]
    fn when_every_connection_is_busy_a_new_one_is_refused() {
        let start = Instant::now();
        let connections = Connections::new(2);
        let slots: Vec<Slot> = (0..2).map(|_| connections.admit(start).0.unwrap()).collect();
        slots.iter().for_each(Slot::busy);
        let (refused, warned) = connections.admit(start);
        assert!(refused.is_none());
        assert_eq!(warned, Some(Crowding { open: 2, evicted: 0, refused: 1 }));
        let later = start + WARNING_INTERVAL;
        assert!(connections.admit(later).0.is_none());
        assert!(connections.admit(later).0.is_none());
        drop(slots);
        let (admitted, warned) = connections.admit(later + WARNING_INTERVAL);
        assert!(admitted.is_some());
        assert_eq!(warned, None, "nothing is crowded any more");
    }

    #[test]
    fn deadlines_run_from_accept_and_from_the_last_answer_and_not_while_busy() {
        let start = Instant::now();
        let connections = Connections::new(4);
        let slot = connections.admit(start).0.unwrap();
        assert_eq!(slot.deadline(), Some(start + FIRST_REQUEST_TIMEOUT));
        slot.busy();
        assert_eq!(slot.deadline(), None);
        let answered = start + Duration::from_secs(1);
        slot.idle(answered);
        assert_eq!(slot.deadline(), Some(answered + IDLE_TIMEOUT));
    }
}
