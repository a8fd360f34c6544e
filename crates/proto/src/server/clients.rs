//! The clients of the server: per address (and interface, for link-local IPv6), how many requests, when last seen, how many were
//! answered, rate-limited and kissed, the token bucket that limits them, and what the devices
//! view needs (version and mode, the usual interval, the device's clock error over time, read by
//! `devices.rs`'s rule). Fixed memory (arrays allocated zeroed,
//! so pages are only touched as clients arrive), O(1) per packet, no allocation after creation:
//! addresses hash (with a secret key, so a flood cannot aim at one bucket) into buckets of a few
//! slots, and a full bucket gives up its least recently seen client.

use super::devices::{TransmitReading, read_transmit};
use super::keyed_hash::siphash13;
use crate::time::{Monotonic, NtpTimestamp};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Slots per bucket.
const WAYS: usize = 8;
/// Clock errors kept per client for its trend, besides the latest.
pub const ERROR_TREND: usize = 4;
/// Memory per client slot: its address, its scope and its record (allocated once, for every slot).
pub const BYTES_PER_CLIENT: usize = 16 + 4 + 8 * WORDS;
/// A clock error joins the trend only this many seconds after the one before it, so the trend
/// spans an hour or more whatever the client's poll.
const TREND_SPACING: u32 = 900;
/// How much of a new interval between requests moves the usual one.
const INTERVAL_WEIGHT: f32 = 0.25;

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

/// A client as the log tells clients apart: its address and, for a link-local IPv6 address, the
/// interface it was heard on, since `fe80::99` on two links is two hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientAddress {
    pub ip: IpAddr,
    /// The index of the interface a link-local IPv6 address was heard on; 0 for any other.
    pub scope: u32,
}

impl ClientAddress {
    /// The client that sent from `peer`; IPv4-mapped IPv6 is kept as given.
    pub fn of(peer: SocketAddr) -> Self {
        let scope = match peer {
            SocketAddr::V6(v6) if (v6.ip().segments()[0] & 0xffc0) == 0xfe80 => v6.scope_id(),
            _ => 0,
        };
        Self { ip: peer.ip(), scope }
    }
}

impl From<IpAddr> for ClientAddress {
    fn from(ip: IpAddr) -> Self {
        Self { ip, scope: 0 }
    }
}

impl fmt::Display for ClientAddress {
    /// `fe80::99%3` for a scoped address (the daemon shows the interface's name instead).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            0 => write!(f, "{}", self.ip),
            scope => write!(f, "{}%{scope}", self.ip),
        }
    }
}

/// A client's place in the log, valid until the next [`ClientLog::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIndex(usize);

/// What a request says about its sender, for the devices view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSeen {
    pub version: u8,
    pub mode: u8,
    /// Its transmit timestamp and our (served) time of its receipt; `None` when clock errors are
    /// not estimated.
    pub clock: Option<(NtpTimestamp, NtpTimestamp)>,
}

/// One client as monitoring reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSummary {
    pub address: ClientAddress,
    pub requests: u32,
    pub answered: u32,
    pub rate_limited: u32,
    pub kissed: u32,
    /// Seconds since the last request.
    pub last_seen_ago: u32,
    /// Seconds since the first request still on record.
    pub first_seen_ago: u32,
    /// The usual seconds between its requests (0: one request so far).
    pub interval: f32,
    /// NTP version and mode of its last request.
    pub version: u8,
    pub mode: u8,
    /// Its clock error (our receive time minus its transmit time, s), when its last request
    /// said.
    pub clock_error: Option<f32>,
    /// Its clock errors over time as (seconds ago, error), oldest first, the latest last.
    pub clock_errors: Vec<(u32, f32)>,
}

/// One clock error: when (seconds since the origin, plus one; 0: none) and how much (s).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ErrorSample {
    at: u32,
    error: f32,
}

impl ErrorSample {
    fn pack(self) -> u64 {
        (u64::from(self.at) << 32) | u64::from(self.error.to_bits())
    }

    fn unpack(word: u64) -> Self {
        Self { at: (word >> 32) as u32, error: f32::from_bits(word as u32) }
    }
}

/// One remembered client's hot part: what every request reads and writes (its counts, rate
/// limit and habits), the first [`HOT`] words of its slot. Its clock errors follow in the slot's
/// other words, touched only when a request says its clock; a record is 104 bytes in all.
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
    answered: u32,
    kissed: u32,
    /// The transmit timestamp of its last request.
    last_transmit: u64,
    /// The usual seconds between its requests (0: one so far).
    interval: f32,
    /// Its last request's version (bits 24..32) and mode (16..24), whether that request said its
    /// clock (bit 8: then the latest error is that request's), and where the next trend sample
    /// goes (0..8): kept as stored, since most requests only rewrite the first two.
    habits: u32,
}

const LATEST_READ: u32 = 0x100;

impl Record {
    fn version(&self) -> u8 {
        (self.habits >> 24) as u8
    }

    fn mode(&self) -> u8 {
        (self.habits >> 16) as u8
    }

    fn latest_read(&self) -> bool {
        self.habits & LATEST_READ != 0
    }

    fn trend_next(&self) -> usize {
        (self.habits & 0xff) as usize % ERROR_TREND
    }
}

/// Words of a slot: the hot record, the latest clock error, then the trend.
const HOT: usize = 8;
const LATEST: usize = HOT;
const WORDS: usize = HOT + 1 + ERROR_TREND;

/// A slot as stored: plain words, so the table is allocated zeroed (untouched pages cost no
/// memory until clients arrive).
type Packed = [u64; WORDS];

impl Record {
    fn load(words: &Packed) -> Self {
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
            answered: high(words[5]),
            kissed: low(words[5]),
            last_transmit: words[6],
            interval: f32::from_bits(high(words[7])),
            habits: low(words[7]),
        }
    }

    fn store(self, words: &mut Packed) {
        let join = |high: u32, low: u32| (u64::from(high) << 32) | u64::from(low);
        words[0] = join(self.requests, self.rate_limited);
        words[1] = join(self.first_seen, self.last_seen);
        words[2] = self.last_request_ms;
        words[3] = self.tokens_at_ms;
        words[4] = join(self.tokens.to_bits(), self.last_kiss);
        words[5] = join(self.answered, self.kissed);
        words[6] = self.last_transmit;
        words[7] = join(self.interval.to_bits(), self.habits);
    }

    /// Takes in what request `seen` says, `gap` seconds after the one before (if any); a clock
    /// error goes into the slot's error words.
    fn see(&mut self, errors: &mut [u64], seen: &RequestSeen, gap: Option<f64>, now_plus_one: u32) {
        // Version, mode, and not read (until the clock is).
        self.habits =
            (u32::from(seen.version) << 24) | (u32::from(seen.mode) << 16) | (self.habits & 0xff);
        if let Some(gap) = gap {
            let gap = gap as f32;
            self.interval = if self.interval == 0.0 {
                gap
            } else {
                self.interval + (gap - self.interval) * INTERVAL_WEIGHT
            };
        }
        let Some((transmit, received)) = seen.clock else { return };
        let previous = (self.last_transmit != 0)
            .then(|| (NtpTimestamp::from_bits(self.last_transmit), gap.unwrap_or(0.0)));
        self.last_transmit = transmit.to_bits();
        let TransmitReading::ClockError(error) = read_transmit(transmit, received, previous) else {
            return;
        };
        self.habits |= LATEST_READ;
        let latest = ErrorSample { at: now_plus_one, error: error as f32 };
        errors[0] = latest.pack();
        let next = self.trend_next();
        let trend = &mut errors[1..];
        let newest = ErrorSample::unpack(trend[(next + ERROR_TREND - 1) % ERROR_TREND]);
        if newest.at == 0 || now_plus_one.saturating_sub(newest.at) >= TREND_SPACING {
            trend[next] = latest.pack();
            self.habits = (self.habits & !0xff) | ((next + 1) % ERROR_TREND) as u32;
        }
    }

    /// The slot's trend, oldest first, then the latest if it is newer, as (seconds ago, error).
    fn errors(&self, errors: &[u64], now_plus_one: u32) -> Vec<(u32, f32)> {
        let next = self.trend_next();
        let mut samples: Vec<ErrorSample> = (0..ERROR_TREND)
            .map(|i| ErrorSample::unpack(errors[1 + (next + i) % ERROR_TREND]))
            .filter(|s| s.at != 0)
            .collect();
        let latest = ErrorSample::unpack(errors[0]);
        if latest.at != 0 && samples.last().is_none_or(|s| s.at != latest.at) {
            samples.push(latest);
        }
        samples.into_iter().map(|s| (now_plus_one.saturating_sub(s.at), s.error)).collect()
    }
}

/// What the server decided about a request before the client's record is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission<'a> {
    /// Refused by the access list: counted, never answered.
    Denied,
    /// Answered if within this rate limit.
    Limited(&'a RateLimit),
    /// Answered: no rate limit.
    Open,
}

/// The log: slot keys (scanned a bucket at a time) and the records they own.
#[derive(Debug, Clone)]
pub struct ClientLog {
    /// The client's address as an IPv6 address (IPv4 ones mapped, `::ffff:a.b.c.d`); 0 (`::`,
    /// never a source address) marks an empty slot.
    keys: Vec<u128>,
    /// The client's scope ([`ClientAddress::scope`]), part of its key.
    scopes: Vec<u32>,
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

fn address_of(key: u128, scope: u32) -> ClientAddress {
    let v6 = std::net::Ipv6Addr::from(key);
    ClientAddress { ip: v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4), scope }
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
        Self {
            keys: vec![0; slots],
            scopes: vec![0; slots],
            records: vec![[0; WORDS]; slots],
            buckets,
            hash_key,
        }
    }

    pub fn capacity(&self) -> usize {
        self.keys.len()
    }

    /// The first slot of the bucket of `key` in `scope` (a link-local address's scope goes
    /// where the 54 zero bits of `fe80::/64` are, so the same address on two links hashes apart).
    fn bucket_start(&self, key: u128, scope: u32) -> usize {
        let hashed = siphash13(self.hash_key, key ^ (u128::from(scope) << 64));
        ((hashed as usize) & (self.buckets - 1)) * WAYS
    }

    /// Counts a request from `client` at `now`, takes in what it says (`seen`), and decides
    /// whether it is answered: not when `Denied`; when `Limited`, if within the limit (else it
    /// counts as rate-limited). A token bucket of `burst` refilled one token every `average`
    /// seconds: a client may spend its burst back to back; once the bucket is empty its next
    /// request must also come at least `minimum` seconds after its previous one (answered or
    /// not), until a whole token has come back, so a client that keeps flooding gets one answer
    /// per `average`. Returns the client's place and whether to answer; one read and one write
    /// of the record's hot words.
    pub fn record(
        &mut self,
        now: Monotonic,
        client: ClientAddress,
        seen: &RequestSeen,
        admission: Admission<'_>,
    ) -> (ClientIndex, bool) {
        let (key, scope) = (key_of(client.ip), client.scope);
        let start = self.bucket_start(key, scope);
        let keys = &self.keys[start..start + WAYS];
        let scopes = &self.scopes[start..start + WAYS];
        let index = match (0..WAYS).find(|&way| keys[way] == key && scopes[way] == scope) {
            Some(way) => start + way,
            None => {
                let way = keys.iter().position(|&k| k == 0).unwrap_or_else(|| {
                    // Full: the least recently seen client makes room.
                    let records = &self.records[start..start + WAYS];
                    (0..WAYS).min_by_key(|&way| records[way][1] as u32).unwrap_or(0)
                });
                self.keys[start + way] = key;
                self.scopes[start + way] = scope;
                let mut fresh = [0; WORDS];
                Record { first_seen: seconds(now), ..Record::default() }.store(&mut fresh);
                self.records[start + way] = fresh;
                start + way
            }
        };
        let slot = &mut self.records[index];
        let mut record = Record::load(slot);
        record.requests = record.requests.saturating_add(1);
        record.last_seen = seconds(now);
        let now_ms = millis_plus_one(now);
        let previous = std::mem::replace(&mut record.last_request_ms, now_ms);
        let gap = (previous != 0).then(|| now_ms.saturating_sub(previous) as f64 / 1e3);
        record.see(&mut slot[LATEST..], seen, gap, seconds(now).saturating_add(1));
        let answer = match admission {
            Admission::Denied => false,
            Admission::Limited(limit) => Self::take_token(&mut record, gap, now_ms, limit),
            Admission::Open => true,
        };
        if answer {
            record.answered = record.answered.saturating_add(1);
        }
        record.store(slot);
        (ClientIndex(index), answer)
    }

    /// Takes a token for a request at `now_ms` (ms + 1), `gap` seconds after the client's one
    /// before (if any).
    fn take_token(record: &mut Record, gap: Option<f64>, now_ms: u64, limit: &RateLimit) -> bool {
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
        let spaced = !emptied || gap.is_none_or(|gap| gap >= 0.9 * limit.minimum);
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
        let slot = &mut self.records[index.0];
        let mut record = Record::load(slot);
        let now_plus_one = seconds(now).saturating_add(1);
        if record.last_kiss != 0 && now_plus_one.saturating_sub(record.last_kiss) < interval {
            return false;
        }
        record.last_kiss = now_plus_one;
        record.kissed = record.kissed.saturating_add(1);
        record.store(slot);
        true
    }

    /// Every client on record, in no particular order.
    pub fn summaries(&self, now: Monotonic) -> Vec<ClientSummary> {
        let now_seconds = seconds(now);
        (self.keys.iter().zip(&self.scopes).zip(&self.records))
            .filter(|((key, _), _)| **key != 0)
            .map(|((&key, &scope), slot)| (address_of(key, scope), Record::load(slot), slot))
            .map(|(address, record, slot)| ClientSummary {
                address,
                requests: record.requests,
                answered: record.answered,
                rate_limited: record.rate_limited,
                kissed: record.kissed,
                last_seen_ago: now_seconds.saturating_sub(record.last_seen),
                first_seen_ago: now_seconds.saturating_sub(record.first_seen),
                interval: record.interval,
                version: record.version(),
                mode: record.mode(),
                clock_error: record.latest_read().then(|| ErrorSample::unpack(slot[LATEST]).error),
                clock_errors: record.errors(&slot[LATEST..], now_seconds.saturating_add(1)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NtpDuration;
    use std::time::Duration;

    /// A request that does not say its clock.
    const SEEN: RequestSeen = RequestSeen { version: 4, mode: 3, clock: None };

    fn client(address: &str) -> ClientAddress {
        ClientAddress::from(address.parse::<IpAddr>().unwrap())
    }

    fn at(seconds: f64) -> Monotonic {
        Monotonic::from_duration(Duration::from_secs_f64(seconds))
    }

    #[test]
    fn counts_requests_per_address_busiest_first() {
        let mut log = ClientLog::new(64, 42);
        let a = client("192.168.1.10");
        let b = client("fd00::7");
        let one_at_a_time = RateLimit { burst: 1.0, ..RateLimit::default() };
        for t in 0..5 {
            log.record(at(f64::from(t)), a, &SEEN, Admission::Limited(&one_at_a_time));
        }
        log.record(at(9.0), b, &SEEN, Admission::Open);
        let mut busiest = log.summaries(at(10.0));
        busiest.sort_by_key(|c| std::cmp::Reverse(c.requests));
        assert_eq!(busiest.len(), 2);
        // No burst, requests 1 s apart: all but the first come too soon after the one before.
        let first = &busiest[0];
        assert_eq!(first.address, a);
        assert_eq!((first.requests, first.rate_limited), (5, 4));
        assert_eq!((first.last_seen_ago, first.first_seen_ago), (6, 10));
        assert_eq!((first.version, first.mode, first.interval), (4, 3, 1.0));
        assert_eq!((first.clock_error, first.clock_errors.len()), (None, 0));
        assert_eq!((busiest[1].address, busiest[1].requests), (b, 1));
    }

    #[test]
    fn memory_stays_fixed_and_the_least_recently_seen_make_room() {
        let mut log = ClientLog::new(1024, 7);
        let capacity = log.capacity();
        let regular = client("10.0.0.1");
        for i in 0..100_000u32 {
            if i % 10 == 0 {
                log.record(at(f64::from(i)), regular, &SEEN, Admission::Open);
            }
            log.record(
                at(f64::from(i)),
                IpAddr::from((0x0a00_0000u32 + 2 + i).to_be_bytes()).into(),
                &SEEN,
                Admission::Open,
            );
        }
        assert_eq!(log.capacity(), capacity);
        let all = log.summaries(at(100_000.0));
        let busiest = all.iter().max_by_key(|c| c.requests).unwrap();
        assert_eq!(
            (busiest.address, busiest.requests),
            (regular, 10_000),
            "a regular client survives a sweep of one-off addresses"
        );
    }

    /// Requests at `interval` seconds for `count` requests; how many were within the limit.
    fn admitted(interval: f64, count: u32, limit: &RateLimit) -> u32 {
        let mut log = ClientLog::new(64, 1);
        let one = client("10.0.0.5");
        (0..count)
            .filter(|&n| {
                let now = at(1.0 + f64::from(n) * interval);
                log.record(now, one, &SEEN, Admission::Limited(limit)).1
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
    fn the_same_link_local_address_on_two_links_is_two_clients_with_two_limits() {
        let mut log = ClientLog::new(64, 5);
        let heard = |text: &str| ClientAddress::of(text.parse().unwrap());
        let (on_lan0, on_lan1) = (heard("[fe80::99%2]:123"), heard("[fe80::99%3]:123"));
        assert_eq!((on_lan0.scope, on_lan1.scope), (2, 3));
        assert_eq!(
            (on_lan0.to_string(), on_lan1.to_string()),
            ("fe80::99%2".into(), "fe80::99%3".into())
        );
        // Only link-local addresses keep their scope: a global one is one host whatever the link.
        assert_eq!(heard("[fd00::99%3]:123").scope, 0);
        assert_eq!(heard("[fd00::99%3]:123"), heard("[fd00::99]:123"));
        let limit = RateLimit { burst: 2.0, ..RateLimit::default() };
        // The host on lan0 floods: its burst of two, then nothing.
        let flood: Vec<bool> = (0..10)
            .map(|n| {
                log.record(at(f64::from(n) * 0.01), on_lan0, &SEEN, Admission::Limited(&limit)).1
            })
            .collect();
        assert_eq!(flood.iter().filter(|&&a| a).count(), 2, "{flood:?}");
        // The host on lan1 has its own bucket.
        assert!(log.record(at(0.2), on_lan1, &SEEN, Admission::Limited(&limit)).1);
        let mut all = log.summaries(at(1.0));
        all.sort_by_key(|c| c.address);
        let seen: Vec<(String, u32, u32)> =
            all.iter().map(|c| (c.address.to_string(), c.requests, c.rate_limited)).collect();
        assert_eq!(seen, [("fe80::99%2".into(), 10, 8), ("fe80::99%3".into(), 1, 0)]);
    }

    #[test]
    fn kisses_are_themselves_limited() {
        let mut log = ClientLog::new(64, 1);
        let one = client("10.0.0.5");
        let sent = (0..1000)
            .filter(|&n| {
                let now = at(f64::from(n) * 0.1);
                let (index, _) = log.record(now, one, &SEEN, Admission::Denied);
                log.may_kiss(index, now, 8)
            })
            .count();
        assert_eq!(sent, 13, "one kiss per 8 s over 100 s");
        assert_eq!(log.summaries(at(100.0))[0].kissed, 13);
    }

    #[test]
    fn a_device_clock_error_is_kept_with_its_trend_and_a_zero_transmit_reads_none() {
        let mut log = ClientLog::new(64, 3);
        let device = client("192.168.1.40");
        let arduino = client("192.168.1.41");
        let base = NtpTimestamp::from_unix(1_796_000_000, 0);
        // A device 5 s ahead and gaining 100 ppm more, asking every 64 s for two hours.
        for n in 0..113u32 {
            let t = f64::from(n) * 64.0;
            let ours = base + NtpDuration::from_seconds_f64(t);
            let theirs = ours + NtpDuration::from_seconds_f64(5.0 + t * 100e-6);
            let seen = RequestSeen { version: 4, mode: 3, clock: Some((theirs, ours)) };
            log.record(at(t), device, &seen, Admission::Open);
            let zero = RequestSeen { version: 3, mode: 3, clock: Some((NtpTimestamp::ZERO, ours)) };
            log.record(at(t), arduino, &zero, Admission::Denied);
        }
        let all = log.summaries(at(112.0 * 64.0));
        let device = all.iter().find(|c| c.address == device).unwrap();
        assert_eq!(device.answered, 113);
        assert!((device.interval - 64.0).abs() < 0.01, "{}", device.interval);
        let latest = device.clock_error.unwrap();
        assert!((latest + 5.0 + 7168.0 * 100e-6).abs() < 1e-3, "{latest}");
        // The trend: samples 15 min or more apart, oldest first, ending with the latest.
        let errors = &device.clock_errors;
        assert_eq!(errors.len(), ERROR_TREND + 1, "{errors:?}");
        assert!(errors.windows(2).all(|w| w[0].0 > w[1].0 && w[0].1 > w[1].1), "{errors:?}");
        assert_eq!(errors.last().unwrap(), &(0, latest));
        let arduino = all.iter().find(|c| c.address == arduino).unwrap();
        assert_eq!((arduino.version, arduino.clock_error), (3, None));
        assert!(arduino.clock_errors.is_empty());
    }
}
