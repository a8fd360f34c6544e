//! The clients of the server: per address, how many requests, when last seen, how many were
//! rate-limited, and the token bucket that limits them. Fixed memory (column arrays allocated zeroed,
//! so pages are only touched as clients arrive), O(1) per packet, no allocation after creation:
//! addresses hash (with a secret key, so a flood cannot aim at one bucket) into buckets of a few
//! slots, and a full bucket gives up its least recently seen client.

use crate::time::Monotonic;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;

/// Slots per bucket.
const WAYS: usize = 8;

/// Per-client limits, as ntpd's `discard average/minimum` with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Long-run least average interval between requests, seconds.
    pub average: f64,
    /// Least interval between two requests, seconds (a tenth is forgiven for scheduling jitter).
    pub minimum: f64,
    /// Requests a client may send above the average rate (at the minimum interval) before it is
    /// held to the average.
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { average: 8.0, minimum: 2.0, burst: 8.0 }
    }
}

/// A client's place in the log, valid until the next [`ClientLog::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIndex(usize);

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

/// The log, as columns indexed by slot.
#[derive(Debug, Clone)]
pub struct ClientLog {
    /// 0 for an empty slot, 4 or 6.
    family: Vec<u8>,
    address: Vec<u128>,
    requests: Vec<u32>,
    rate_limited: Vec<u32>,
    /// Seconds since the origin.
    first_seen: Vec<u32>,
    last_seen: Vec<u32>,
    /// Milliseconds since the origin, plus one (0: none yet).
    last_request_ms: Vec<u64>,
    /// Tokens left in the client's bucket, and when they were counted (ms + 1).
    tokens: Vec<f32>,
    tokens_at_ms: Vec<u64>,
    /// When the client was last sent a kiss-o'-death, seconds + 1 (0: never).
    last_kiss: Vec<u32>,
    buckets: usize,
    hash_key: u64,
}

fn key_of(address: IpAddr) -> (u8, u128) {
    match address {
        IpAddr::V4(v4) => (4, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (6, u128::from(v6)),
    }
}

fn seconds(now: Monotonic) -> u32 {
    now.since_origin().as_secs().min(u64::from(u32::MAX)) as u32
}

fn millis_plus_one(now: Monotonic) -> u64 {
    (now.since_origin().as_millis().min(u128::from(u64::MAX - 1)) as u64) + 1
}

impl ClientLog {
    /// A log for about `capacity` clients (rounded up to whole buckets), hashing with `hash_key`,
    /// a secret random number.
    pub fn new(capacity: usize, hash_key: u64) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        let slots = buckets * WAYS;
        Self {
            family: vec![0; slots],
            address: vec![0; slots],
            requests: vec![0; slots],
            rate_limited: vec![0; slots],
            first_seen: vec![0; slots],
            last_seen: vec![0; slots],
            last_request_ms: vec![0; slots],
            tokens: vec![0.0; slots],
            tokens_at_ms: vec![0; slots],
            last_kiss: vec![0; slots],
            buckets,
            hash_key,
        }
    }

    pub fn capacity(&self) -> usize {
        self.family.len()
    }

    fn bucket_start(&self, family: u8, address: u128) -> usize {
        let mut hasher = DefaultHasher::new();
        self.hash_key.hash(&mut hasher);
        family.hash(&mut hasher);
        address.hash(&mut hasher);
        ((hasher.finish() as usize) & (self.buckets - 1)) * WAYS
    }

    /// Counts a request from `address` at `now` and returns its place.
    pub fn record(&mut self, now: Monotonic, address: IpAddr) -> ClientIndex {
        let (family, bits) = key_of(address);
        let start = self.bucket_start(family, bits);
        let range = start..start + WAYS;
        let index = range
            .clone()
            .find(|&i| self.family[i] == family && self.address[i] == bits)
            .or_else(|| range.clone().find(|&i| self.family[i] == 0))
            // Full: the least recently seen client makes room.
            .unwrap_or_else(|| range.min_by_key(|&i| self.last_seen[i]).unwrap_or(start));
        let now_seconds = seconds(now);
        if self.family[index] != family || self.address[index] != bits {
            self.family[index] = family;
            self.address[index] = bits;
            self.requests[index] = 0;
            self.rate_limited[index] = 0;
            self.first_seen[index] = now_seconds;
            self.last_request_ms[index] = 0;
            self.tokens_at_ms[index] = 0;
            self.last_kiss[index] = 0;
        }
        self.requests[index] = self.requests[index].saturating_add(1);
        self.last_seen[index] = now_seconds;
        ClientIndex(index)
    }

    /// Whether the request just recorded at `index` is within `limit`; if not it is counted as
    /// rate-limited. A token bucket of `burst` refilled every `average` seconds, and at least
    /// `minimum` seconds since the client's previous request (answered or not).
    pub fn within_limit(&mut self, index: ClientIndex, now: Monotonic, limit: &RateLimit) -> bool {
        let i = index.0;
        let now_ms = millis_plus_one(now);
        let previous = std::mem::replace(&mut self.last_request_ms[i], now_ms);
        if self.tokens_at_ms[i] == 0 {
            // A new client starts with a full bucket.
            self.tokens[i] = limit.burst as f32;
        } else {
            let elapsed = now_ms.saturating_sub(self.tokens_at_ms[i]) as f64 / 1e3;
            self.tokens[i] =
                (f64::from(self.tokens[i]) + elapsed / limit.average).min(limit.burst) as f32;
        }
        self.tokens_at_ms[i] = now_ms;
        let gap = now_ms.saturating_sub(previous) as f64 / 1e3;
        let spaced = previous == 0 || gap >= 0.9 * limit.minimum;
        if spaced && self.tokens[i] >= 1.0 {
            self.tokens[i] -= 1.0;
            true
        } else {
            self.rate_limited[i] = self.rate_limited[i].saturating_add(1);
            false
        }
    }

    /// Whether the client at `index` may be sent a kiss-o'-death now: at most one every
    /// `interval` seconds, so the kisses themselves cannot be used to flood anyone.
    pub fn may_kiss(&mut self, index: ClientIndex, now: Monotonic, interval: u32) -> bool {
        let i = index.0;
        let now_plus_one = seconds(now).saturating_add(1);
        if self.last_kiss[i] != 0 && now_plus_one.saturating_sub(self.last_kiss[i]) < interval {
            return false;
        }
        self.last_kiss[i] = now_plus_one;
        true
    }

    /// The `limit` clients with the most requests, busiest first.
    pub fn busiest(&self, now: Monotonic, limit: usize) -> Vec<ClientSummary> {
        let now_seconds = seconds(now);
        let mut clients: Vec<ClientSummary> = (0..self.capacity())
            .filter(|&i| self.family[i] != 0)
            .map(|i| ClientSummary {
                address: if self.family[i] == 4 {
                    IpAddr::from((self.address[i] as u32).to_be_bytes())
                } else {
                    IpAddr::from(self.address[i].to_be_bytes())
                },
                requests: self.requests[i],
                rate_limited: self.rate_limited[i],
                last_seen_ago: now_seconds.saturating_sub(self.last_seen[i]),
                first_seen_ago: now_seconds.saturating_sub(self.first_seen[i]),
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
    use std::time::Duration;

    fn at(seconds: f64) -> Monotonic {
        Monotonic::from_duration(Duration::from_secs_f64(seconds))
    }

    #[test]
    fn counts_requests_per_address_busiest_first() {
        let mut log = ClientLog::new(64, 42);
        let a: IpAddr = "192.168.1.10".parse().unwrap();
        let b: IpAddr = "fd00::7".parse().unwrap();
        for t in 0..5 {
            let index = log.record(at(f64::from(t)), a);
            log.within_limit(index, at(f64::from(t)), &RateLimit::default());
        }
        log.record(at(9.0), b);
        let busiest = log.busiest(at(10.0), 10);
        assert_eq!(busiest.len(), 2);
        // Requests 1 s apart: all but the first come too soon after the one before.
        assert_eq!(
            busiest[0],
            ClientSummary {
                address: a,
                requests: 5,
                rate_limited: 4,
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
                log.record(at(f64::from(i)), regular);
            }
            log.record(at(f64::from(i)), IpAddr::from((0x0a00_0000u32 + 2 + i).to_be_bytes()));
        }
        assert_eq!(log.capacity(), capacity);
        let busiest = log.busiest(at(100_000.0), 1);
        assert_eq!(
            (busiest[0].address, busiest[0].requests),
            (regular, 10_000),
            "a regular client survives a sweep of one-off addresses"
        );
    }

    /// Requests at `interval` seconds for `count` requests; how many were within the limit.
    fn admitted(interval: f64, count: u32, limit: &RateLimit) -> u32 {
        let mut log = ClientLog::new(64, 1);
        let client: IpAddr = "10.0.0.5".parse().unwrap();
        (0..count)
            .filter(|&n| {
                let now = at(1.0 + f64::from(n) * interval);
                let index = log.record(now, client);
                log.within_limit(index, now, limit)
            })
            .count() as u32
    }

    #[test]
    fn polite_clients_and_bursts_pass_floods_are_held_to_the_average() {
        let limit = RateLimit::default();
        assert_eq!(admitted(64.0, 100, &limit), 100, "a client polling every 64 s");
        assert_eq!(admitted(2.0, 6, &limit), 6, "an iburst of six at 2 s");
        assert_eq!(admitted(1.999, 6, &limit), 6, "scheduling jitter in a burst is forgiven");
        // Every 2 s for 400 s: the burst of 8, then one per 8 s.
        let polled = admitted(2.0, 200, &limit);
        assert!((55..=60).contains(&polled), "{polled} of 200 at 2 s");
        // Every millisecond: only the first gets through (each later one is too close).
        assert_eq!(admitted(0.001, 10_000, &limit), 1);
    }

    #[test]
    fn kisses_are_themselves_limited() {
        let mut log = ClientLog::new(64, 1);
        let client: IpAddr = "10.0.0.5".parse().unwrap();
        let sent = (0..1000)
            .filter(|&n| {
                let now = at(f64::from(n) * 0.1);
                let index = log.record(now, client);
                log.may_kiss(index, now, 8)
            })
            .count();
        assert_eq!(sent, 13, "one kiss per 8 s over 100 s");
    }
}
