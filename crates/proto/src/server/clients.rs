//! A bounded log of the clients served: per address, how many requests, when last seen and how
//! many were rate-limited. Fixed memory, O(1) per packet, no allocation after creation: addresses
//! hash (with a secret key, so a flood cannot aim at one bucket) into buckets of a few slots, and
//! a full bucket gives up its least recently seen client.

use crate::time::Monotonic;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;

/// Slots per bucket.
const WAYS: usize = 8;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    /// 0 for an empty slot, 4 or 6.
    family: u8,
    address: [u8; 16],
    requests: u32,
    rate_limited: u32,
    /// Seconds since the log's origin.
    first_seen: u32,
    last_seen: u32,
}

impl Slot {
    fn address(&self) -> IpAddr {
        if self.family == 4 {
            IpAddr::from([self.address[0], self.address[1], self.address[2], self.address[3]])
        } else {
            IpAddr::from(self.address)
        }
    }
}

fn key_of(address: IpAddr) -> (u8, [u8; 16]) {
    match address {
        IpAddr::V4(v4) => {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&v4.octets());
            (4, bytes)
        }
        IpAddr::V6(v6) => (6, v6.octets()),
    }
}

/// One client as monitoring reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSummary {
    pub address: IpAddr,
    pub requests: u32,
    pub rate_limited: u32,
    /// Seconds since the last request.
    pub last_seen_ago: u32,
    /// Seconds since the first request still on record.
    pub first_seen_ago: u32,
}

#[derive(Debug, Clone)]
pub struct ClientLog {
    slots: Vec<Slot>,
    buckets: usize,
    hash_key: u64,
}

impl ClientLog {
    /// A log for about `capacity` clients (rounded up to whole buckets), hashing with `hash_key`,
    /// a secret random number.
    pub fn new(capacity: usize, hash_key: u64) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        Self { slots: vec![Slot::default(); buckets * WAYS], buckets, hash_key }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn bucket(&self, family: u8, address: &[u8; 16]) -> usize {
        let mut hasher = DefaultHasher::new();
        self.hash_key.hash(&mut hasher);
        family.hash(&mut hasher);
        address.hash(&mut hasher);
        (hasher.finish() as usize) & (self.buckets - 1)
    }

    /// Counts a request from `address` at `now`.
    pub fn record(&mut self, now: Monotonic, address: IpAddr) {
        let seconds = now.since_origin().as_secs().min(u64::from(u32::MAX)) as u32;
        let (family, bytes) = key_of(address);
        let start = self.bucket(family, &bytes) * WAYS;
        let bucket = &mut self.slots[start..start + WAYS];
        let index = bucket
            .iter()
            .position(|s| s.family == family && s.address == bytes)
            .or_else(|| bucket.iter().position(|s| s.family == 0))
            .unwrap_or_else(|| {
                // Full: the least recently seen client makes room.
                (0..WAYS).min_by_key(|&i| bucket[i].last_seen).unwrap_or(0)
            });
        let slot = &mut bucket[index];
        if slot.family != family || slot.address != bytes {
            *slot = Slot { family, address: bytes, first_seen: seconds, ..Slot::default() };
        }
        slot.requests = slot.requests.saturating_add(1);
        slot.last_seen = seconds;
    }

    /// Marks the latest request from `address` as rate-limited.
    pub fn count_rate_limited(&mut self, address: IpAddr) {
        let (family, bytes) = key_of(address);
        let start = self.bucket(family, &bytes) * WAYS;
        if let Some(slot) = self.slots[start..start + WAYS]
            .iter_mut()
            .find(|s| s.family == family && s.address == bytes)
        {
            slot.rate_limited = slot.rate_limited.saturating_add(1);
        }
    }

    /// The `limit` clients with the most requests, busiest first.
    pub fn busiest(&self, now: Monotonic, limit: usize) -> Vec<ClientSummary> {
        let seconds = now.since_origin().as_secs().min(u64::from(u32::MAX)) as u32;
        let mut clients: Vec<ClientSummary> = self
            .slots
            .iter()
            .filter(|s| s.family != 0)
            .map(|s| ClientSummary {
                address: s.address(),
                requests: s.requests,
                rate_limited: s.rate_limited,
                last_seen_ago: seconds.saturating_sub(s.last_seen),
                first_seen_ago: seconds.saturating_sub(s.first_seen),
            })
            .collect();
        clients.sort_by(|a, b| {
            b.requests.cmp(&a.requests).then(a.last_seen_ago.cmp(&b.last_seen_ago))
        });
        clients.truncate(limit);
        clients
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> Monotonic {
        Monotonic::from_duration(std::time::Duration::from_secs(seconds))
    }

    #[test]
    fn counts_requests_per_address_busiest_first() {
        let mut log = ClientLog::new(64, 42);
        let a: IpAddr = "192.168.1.10".parse().unwrap();
        let b: IpAddr = "fd00::7".parse().unwrap();
        for t in 0..5 {
            log.record(at(t), a);
        }
        log.record(at(9), b);
        log.count_rate_limited(a);
        let busiest = log.busiest(at(10), 10);
        assert_eq!(busiest.len(), 2);
        assert_eq!(
            busiest[0],
            ClientSummary {
                address: a,
                requests: 5,
                rate_limited: 1,
                last_seen_ago: 6,
                first_seen_ago: 10
            }
        );
        assert_eq!((busiest[1].address, busiest[1].requests), (b, 1));
    }

    #[test]
    fn memory_stays_fixed_and_the_least_recently_seen_make_room() {
        let mut log = ClientLog::new(1024, 7);
        let capacity = log.capacity();
        let regular: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..100_000u32 {
            if i % 10 == 0 {
                log.record(at(u64::from(i)), regular);
            }
            log.record(at(u64::from(i)), IpAddr::from((0x0a00_0000u32 + 2 + i).to_be_bytes()));
        }
        assert_eq!(log.capacity(), capacity);
        let busiest = log.busiest(at(100_000), 1);
        assert_eq!(
            (busiest[0].address, busiest[0].requests),
            (regular, 10_000),
            "a regular client survives a sweep of one-off addresses"
        );
        assert!(log.busiest(at(100_000), usize::MAX).len() <= capacity);
    }
}
