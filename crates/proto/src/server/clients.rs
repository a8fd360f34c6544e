//! The clients of the server: per address, how many requests, when last seen, how many were
//! rate-limited, and the token bucket that limits them. Fixed memory (arrays allocated zeroed,
//! so pages are only touched as clients arrive), O(1) per packet, no allocation after creation:
//! addresses hash (with a secret key, so a flood cannot aim at one bucket) into buckets of a few
//! slots, and a full bucket gives up its least recently seen client.

use super::keyed_hash::siphash13;
use crate::time::Monotonic;
use std::net::IpAddr;

/// Slots per bucket.
const WAYS: usize = 8;

/// Per-client limits, as ntpd's `discard average/minimum` with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Long-run least average interval between requests, seconds.
    pub average: f64,
    /// Least interval between two requests once the client's bucket is empty, seconds (a tenth
    /// is forgiven for scheduling jitter). A burst is not spaced.
    pub minimum: f64,
    /// Requests a client may send back to back, above the average rate, before it is held to
    /// the average.
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

/// One remembered client: what its rate limit and monitoring need, in 40 bytes, so that a
/// request touches the bucket's keys (two cache lines) and one record.
#[derive(Debug, Clone, Copy, Default)]
struct Record {
    requests: u32,
    rate_limited: u32,
    /// Seconds since the origin.
    first_seen: u32,
    last_seen: u32,
    /// Milliseconds since the origin, plus one (0: none yet).
    last_request_ms: u64,
    /// When the tokens were last counted (ms + 1; 0: never).
    tokens_at_ms: u64,
    /// Tokens left in the client's bucket.
    tokens: f32,
    /// When the client was last sent a kiss-o'-death, seconds + 1 (0: never).
    last_kiss: u32,
}

/// A record as stored: plain words, so the table is allocated zeroed (untouched pages cost no
/// memory until clients arrive).
type Packed = [u64; 5];

impl From<Packed> for Record {
    fn from(words: Packed) -> Self {
        let high = |word: u64| (word >> 32) as u32;
        let low = |word: u64| word as u32;
        Self {
            requests: high(words[0]),
            rate_limited: low(words[0]),
            first_seen: high(words[1]),
            last_seen: low(words[1]),
            last_request_ms: words[2],
            tokens_at_ms: words[3],
            tokens: f32::from_bits(high(words[4])),
            last_kiss: low(words[4]),
        }
    }
}

impl From<Record> for Packed {
    fn from(record: Record) -> Self {
        let join = |high: u32, low: u32| (u64::from(high) << 32) | u64::from(low);
        [
            join(record.requests, record.rate_limited),
            join(record.first_seen, record.last_seen),
            record.last_request_ms,
            record.tokens_at_ms,
            join(record.tokens.to_bits(), record.last_kiss),
        ]
    }
}

/// The log: slot keys (scanned a bucket at a time) and the records they own.
#[derive(Debug, Clone)]
pub struct ClientLog {
    /// The client's address as an IPv6 address (IPv4 ones mapped, `::ffff:a.b.c.d`); 0 (`::`,
    /// never a source address) marks an empty slot.
    keys: Vec<u128>,
    records: Vec<Packed>,
    buckets: usize,
    /// The secret SipHash key.
    hash_key: (u64, u64),
}

fn key_of(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn address_of(key: u128) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(key);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
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
        // The second half of the key spread from the first (splitmix64's finaliser).
        let mut spread = hash_key ^ 0x9e37_79b9_7f4a_7c15;
        spread = (spread ^ (spread >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        spread = (spread ^ (spread >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let hash_key = (hash_key, spread ^ (spread >> 31));
        Self { keys: vec![0; slots], records: vec![[0; 5]; slots], buckets, hash_key }
    }

    pub fn capacity(&self) -> usize {
        self.keys.len()
    }

    fn bucket_start(&self, key: u128) -> usize {
        ((siphash13(self.hash_key, key) as usize) & (self.buckets - 1)) * WAYS
    }

    /// Counts a request from `address` at `now` and returns its place.
    pub fn record(&mut self, now: Monotonic, address: IpAddr) -> ClientIndex {
        let key = key_of(address);
        let start = self.bucket_start(key);
        let keys = &self.keys[start..start + WAYS];
        let index = match keys.iter().position(|&k| k == key) {
            Some(way) => start + way,
            None => {
                let way = keys.iter().position(|&k| k == 0).unwrap_or_else(|| {
                    // Full: the least recently seen client makes room.
                    let records = &self.records[start..start + WAYS];
                    (0..WAYS).min_by_key(|&way| Record::from(records[way]).last_seen).unwrap_or(0)
                });
                self.keys[start + way] = key;
                self.records[start + way] =
                    Record { first_seen: seconds(now), ..Record::default() }.into();
                start + way
            }
        };
        let mut record = Record::from(self.records[index]);
        record.requests = record.requests.saturating_add(1);
        record.last_seen = seconds(now);
        self.records[index] = record.into();
        ClientIndex(index)
    }

    /// Whether the request just recorded at `index` is within `limit`; if not it is counted as
    /// rate-limited. A token bucket of `burst` refilled one token every `average` seconds: a
    /// client may spend its burst back to back; once the bucket is empty its next request must
    /// also come at least `minimum` seconds after its previous one (answered or not), until a
    /// whole token has come back, so a client that keeps flooding gets one answer per `average`.
    pub fn within_limit(&mut self, index: ClientIndex, now: Monotonic, limit: &RateLimit) -> bool {
        let mut record = Record::from(self.records[index.0]);
        let within = Self::take_token(&mut record, now, limit);
        self.records[index.0] = record.into();
        within
    }

    fn take_token(record: &mut Record, now: Monotonic, limit: &RateLimit) -> bool {
        let now_ms = millis_plus_one(now);
        let previous = std::mem::replace(&mut record.last_request_ms, now_ms);
        let emptied = record.tokens_at_ms != 0 && record.tokens < 1.0;
        if record.tokens_at_ms == 0 {
            // A new client starts with a full bucket.
            record.tokens = limit.burst as f32;
        } else {
            let elapsed = now_ms.saturating_sub(record.tokens_at_ms) as f64 / 1e3;
            record.tokens =
                (f64::from(record.tokens) + elapsed / limit.average).min(limit.burst) as f32;
        }
        record.tokens_at_ms = now_ms;
        let gap = now_ms.saturating_sub(previous) as f64 / 1e3;
        let spaced = !emptied || previous == 0 || gap >= 0.9 * limit.minimum;
        if spaced && record.tokens >= 1.0 {
            record.tokens -= 1.0;
            true
        } else {
            record.rate_limited = record.rate_limited.saturating_add(1);
            false
        }
    }

    /// Whether the client at `index` may be sent a kiss-o'-death now: at most one every
    /// `interval` seconds, so the kisses themselves cannot be used to flood anyone.
    pub fn may_kiss(&mut self, index: ClientIndex, now: Monotonic, interval: u32) -> bool {
        let mut record = Record::from(self.records[index.0]);
        let now_plus_one = seconds(now).saturating_add(1);
        if record.last_kiss != 0 && now_plus_one.saturating_sub(record.last_kiss) < interval {
            return false;
        }
        record.last_kiss = now_plus_one;
        self.records[index.0] = record.into();
        true
    }

    /// The `limit` clients with the most requests, busiest first.
    pub fn busiest(&self, now: Monotonic, limit: usize) -> Vec<ClientSummary> {
        let now_seconds = seconds(now);
        let mut clients: Vec<ClientSummary> = (self.keys.iter().zip(&self.records))
            .filter(|(key, _)| **key != 0)
            .map(|(&key, &record)| (key, Record::from(record)))
            .map(|(key, record)| ClientSummary {
                address: address_of(key),
                requests: record.requests,
                rate_limited: record.rate_limited,
                last_seen_ago: now_seconds.saturating_sub(record.last_seen),
                first_seen_ago: now_seconds.saturating_sub(record.first_seen),
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
        let one_at_a_time = RateLimit { burst: 1.0, ..RateLimit::default() };
        for t in 0..5 {
            let index = log.record(at(f64::from(t)), a);
            log.within_limit(index, at(f64::from(t)), &one_at_a_time);
        }
        log.record(at(9.0), b);
        let busiest = log.busiest(at(10.0), 10);
        assert_eq!(busiest.len(), 2);
        // No burst, requests 1 s apart: all but the first come too soon after the one before.
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
        assert_eq!(admitted(0.0, 9, &limit), 8, "a burst of eight back to back, not nine");
        assert_eq!(admitted(0.5, 12, &limit), 8, "the burst spent, the minimum applies");
        // Every 2 s for 400 s: the burst of 8, then one per 8 s.
        let polled = admitted(2.0, 200, &limit);
        assert!((55..=60).contains(&polled), "{polled} of 200 at 2 s");
        // Every 1.9 s (within the forgiven tenth of the minimum): the same long-run rate.
        let polled = admitted(1.9, 200, &limit);
        assert!((52..=58).contains(&polled), "{polled} of 200 at 1.9 s");
        // Every millisecond for 10 s: the burst, then one when a token has come back (at 8 s).
        assert_eq!(admitted(0.001, 10_000, &limit), 9);
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
