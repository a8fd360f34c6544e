//! One upstream server: its poll schedule and bursts, reachability register, the checks on each
//! answer, kiss-o'-death handling and its clock filter. No I/O: the daemon sends the requests this
//! asks for and hands back what arrives.

mod filter;
mod id;
mod refclock;
mod view;

pub use filter::{ClockFilter, FilterOutput, FilterResult, FilterSample, MAX_DISPERSION, PHI};
pub use id::SourceId;
pub use refclock::{RefclockConfig, RefclockSource, pps_offset};
pub use view::{MAX_DISTANCE, ServerInfo, SourceView};

use crate::auth::SymmetricKey;
use crate::client::unusable_reason;
use crate::client::{ClientRequest, RequestPacket, ResponseError, evaluate_response};
use crate::packet::{Mode, NtpPacket, ReferenceId};
use crate::time::{Monotonic, NtpDuration, NtpTimestamp};
use std::time::Duration;

/// Requests in an initial burst (iburst): enough samples for the clock filter to become usable.
const BURST_REQUESTS: u8 = 6;
/// Unanswered requests in a row that end a burst.
const BURST_GIVE_UP: u32 = 2;
/// Unanswered polls in a row after which the poll interval starts to grow.
const UNANSWERED_POLLS_BEFORE_BACKOFF: u32 = 4;
/// Lowest and highest poll exponents accepted anywhere (1 s, for a server on the hub's own LAN,
/// to 36 h).
pub const POLL_LIMITS: (i8, i8) = (0, 17);

/// How one source is polled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceConfig {
    /// Poll interval bounds, log2 seconds.
    pub minpoll: i8,
    pub maxpoll: i8,
    /// Start (and restart after being unreachable) with a quick burst of requests.
    pub iburst: bool,
    /// Spacing of burst requests: 2 s, at least 4 s for servers that ask for it (NIST).
    pub burst_spacing: Duration,
    /// Sign requests with this key and accept only answers signed by it.
    pub key: Option<SymmetricKey>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            minpoll: 6,
            maxpoll: 10,
            iburst: true,
            burst_spacing: Duration::from_secs(2),
            key: None,
        }
    }
}

/// What became of an answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResponseOutcome {
    /// A usable measurement, and what the clock filter made of it.
    Sample { measurement: Measurement, filter: FilterResult },
    /// Not an answer to our outstanding request (late, duplicate, spoofed): ignored.
    NotOurs(ResponseError),
    /// The server answered but its time must not be used (the reason says why); `timestamps`
    /// are the exchange's T1–T4 when they were the trouble.
    Unusable { reason: &'static str, timestamps: Option<[NtpTimestamp; 4]> },
    /// Kiss-o'-death: `RATE` makes us poll less often; `DENY` and `RSTR` stop this source.
    Kiss(ReferenceId),
}

/// One measurement from one exchange, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Server minus local clock.
    pub offset: f64,
    pub delay: f64,
    /// Error bound when taken: both precisions plus PHI × delay.
    pub dispersion: f64,
    /// The middle of the exchange, when the offset held.
    pub time: Monotonic,
    pub server: ServerInfo,
}

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    cookie: NtpTimestamp,
    /// Local clock when the request left (T1), once the daemon reports it.
    sent_at: Option<NtpTimestamp>,
}

/// The state of one upstream NTP server.
#[derive(Debug, Clone)]
pub struct NtpSource {
    config: SourceConfig,
    /// Our reference id while this source is the system peer.
    reference_id: ReferenceId,
    /// Precision of our clock, seconds, and as the log2 our requests carry.
    local_precision: f64,
    local_precision_log2: i8,
    /// Bit 0: the latest poll was answered (RFC 5905).
    reach: u8,
    polls: u32,
    /// Polls in a row with no answer.
    unanswered: u32,
    /// The system's preferred poll exponent.
    system_poll: i8,
    /// `minpoll`, raised by RATE kisses.
    min_poll: i8,
    next_poll_at: Monotonic,
    /// When the latest request was made.
    last_poll_at: Option<Monotonic>,
    burst_left: u8,
    outstanding: Option<Outstanding>,
    last_server_transmit: NtpTimestamp,
    /// Transmit time of the last broadcast taken: older or equal ones are replays.
    last_broadcast_transmit: NtpTimestamp,
    filter: ClockFilter,
    /// Least delay over the last 32–64 samples: closer to the path's minimum than the filter's.
    path_delay: PathDelay,
    server: Option<ServerInfo>,
    denied: Option<ReferenceId>,
    refusals: Refusals,
}

/// Answers that came back but could not be used.
#[derive(Debug, Clone, Copy, Default)]
struct Refusals {
    total: u32,
    in_a_row: u32,
    last: Option<&'static str>,
}

/// The least delay over a longer window than the clock filter's, in two alternating buckets so
/// that an old minimum (from before a route change) expires.
#[derive(Debug, Clone, Copy, Default)]
struct PathDelay {
    current: Option<f64>,
    previous: Option<f64>,
    in_current: u32,
    total: u32,
}

impl PathDelay {
    const BUCKET: u32 = 32;

    fn add(&mut self, delay: f64) {
        if self.in_current == Self::BUCKET {
            self.previous = self.current.take();
            self.in_current = 0;
        }
        self.current = Some(self.current.map_or(delay, |d| d.min(delay)));
        self.in_current += 1;
        self.total = self.total.saturating_add(1);
    }

    fn minimum(&self) -> Option<f64> {
        match (self.current, self.previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl NtpSource {
    /// A source whose first poll is at `first_poll_at`.
    pub fn new(
        config: SourceConfig,
        reference_id: ReferenceId,
        local_precision: i8,
        first_poll_at: Monotonic,
    ) -> Self {
        let (low, high) = POLL_LIMITS;
        let minpoll = config.minpoll.clamp(low, high);
        let config =
            SourceConfig { minpoll, maxpoll: config.maxpoll.clamp(minpoll, high), ..config };
        Self {
            config,
            reference_id,
            local_precision: NtpDuration::from_log2_seconds(local_precision).to_seconds_f64(),
            local_precision_log2: local_precision,
            reach: 0,
            polls: 0,
            unanswered: 0,
            system_poll: config.minpoll,
            min_poll: config.minpoll,
            next_poll_at: first_poll_at,
            last_poll_at: None,
            burst_left: if config.iburst { BURST_REQUESTS } else { 0 },
            outstanding: None,
            last_server_transmit: NtpTimestamp::ZERO,
            last_broadcast_transmit: NtpTimestamp::ZERO,
            filter: ClockFilter::default(),
            path_delay: PathDelay::default(),
            server: None,
            denied: None,
            refusals: Refusals::default(),
        }
    }

    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// When the next request is due; far in the future for a source that told us to stop.
    pub fn next_poll_at(&self) -> Monotonic {
        self.next_poll_at
    }

    /// The poll exponent in use: the system's wish within this source's bounds, longer while the
    /// server does not answer (so an offline hub polls gently).
    pub fn poll_exponent(&self) -> i8 {
        let backoff = self.unanswered.saturating_sub(UNANSWERED_POLLS_BEFORE_BACKOFF).min(16) as i8;
        (self.system_poll.max(self.min_poll) + backoff).clamp(self.min_poll, self.config.maxpoll)
    }

    /// The system asks for this poll exponent.
    /// The system's advice. A shorter poll (the system was surprised) brings the next poll
    /// forward, rather than waiting out the long interval already begun.
    pub fn set_system_poll(&mut self, poll: i8) {
        let before = self.poll_exponent();
        self.system_poll = poll;
        let after = self.poll_exponent();
        if after < before
            && self.burst_left == 0
            && let Some(last) = self.last_poll_at
        {
            let sooner = last + Duration::from_secs_f64(2f64.powi(i32::from(after)));
            self.next_poll_at = self.next_poll_at.min(sooner);
        }
    }

    /// Time to poll: returns the request to send, whose transmit field is `cookie` (random bits
    /// from the caller). `jitter` in [0, 1) spreads the next poll by up to 10 % so sources do not
    /// march in step. Call [`NtpSource::sent`] with the send time.
    pub fn poll(&mut self, now: Monotonic, cookie: NtpTimestamp, jitter: f64) -> RequestPacket {
        let previous_unanswered = self.outstanding.is_some() && self.polls > 0;
        if previous_unanswered {
            self.unanswered = self.unanswered.saturating_add(1);
        }
        // A burst goes on through a lost packet, but not to a server that stopped answering.
        if self.unanswered >= BURST_GIVE_UP {
            self.burst_left = 0;
        }
        self.reach <<= 1;
        self.polls = self.polls.saturating_add(1);
        self.last_poll_at = Some(now);
        self.outstanding = Some(Outstanding { cookie, sent_at: None });

        let interval = if self.burst_left > 1 {
            self.burst_left -= 1;
            self.config.burst_spacing
        } else {
            self.burst_left = 0;
            let base = 2f64.powi(i32::from(self.poll_exponent()));
            Duration::from_secs_f64(base * (1.0 + 0.1 * jitter.clamp(0.0, 1.0)))
        };
        self.next_poll_at = now + interval;

        let client = ClientRequest {
            poll: self.poll_exponent(),
            key: self.config.key,
            precision: self.local_precision_log2,
            ..ClientRequest::new(cookie)
        };
        client.encode_packet()
    }

    /// The request made by the last [`NtpSource::poll`] left at `t1` (local clock).
    pub fn sent(&mut self, t1: NtpTimestamp) {
        if let Some(outstanding) = self.outstanding.as_mut() {
            outstanding.sent_at = Some(t1);
        }
    }

    /// An answer arrived at `t4` (local clock), `now` (monotonic).
    pub fn handle_response(
        &mut self,
        now: Monotonic,
        response: &[u8],
        t4: NtpTimestamp,
    ) -> ResponseOutcome {
        let Some(Outstanding { cookie, sent_at: Some(t1) }) = self.outstanding else {
            return ResponseOutcome::NotOurs(ResponseError::OriginMismatch);
        };
        let request = ClientRequest {
            key: self.config.key,
            precision: self.local_precision_log2,
            ..ClientRequest::new(cookie)
        };
        let sample = match evaluate_response(&request, t1, response, t4) {
            Ok(sample) => sample,
            // A bad MAC may be a forgery: the real answer can still come.
            Err(
                error @ (ResponseError::OriginMismatch
                | ResponseError::Malformed(_)
                | ResponseError::BadMac),
            ) => {
                return ResponseOutcome::NotOurs(error);
            }
            Err(ResponseError::Kiss(code)) => {
                self.outstanding = None;
                return self.handle_kiss(now, code, response);
            }
            Err(ResponseError::CryptoNak) => {
                return self.refuse("the server does not accept our key (crypto-NAK)", None);
            }
            Err(ResponseError::UnexpectedMode(_)) => {
                return self.refuse("not a server answer", None);
            }
            Err(ResponseError::ZeroTimestamp) => {
                return self.refuse("zero timestamp in the answer", None);
            }
            Err(ResponseError::ImpossibleTimestamps) => {
                // The server answered us (the origin matched): it is reachable, and the four
                // timestamps say what went wrong.
                let header = NtpPacket::decode(response).map(|p| p.header).ok();
                let timestamps = header.map(|h| [t1, h.receive_time, h.transmit_time, t4]);
                self.answered();
                if let Some(header) = header {
                    self.server = Some(ServerInfo::from_header(&header));
                }
                return self.refuse(
                    "its transmit time is before its receive time by more than the precisions, \
                     or the round trip is negative",
                    timestamps,
                );
            }
        };
        if sample.server.transmit_time == self.last_server_transmit {
            return ResponseOutcome::NotOurs(ResponseError::OriginMismatch);
        }
        self.last_server_transmit = sample.server.transmit_time;
        // The exchange is complete: the server is reachable, whatever it says. Back after being
        // unreachable: refill the filter with a burst.
        if self.reach == 0 && self.polls > 1 && self.config.iburst && self.burst_left == 0 {
            self.burst_left = BURST_REQUESTS - 1;
            self.next_poll_at = now + self.config.burst_spacing;
        }
        self.answered();
        let server = ServerInfo::from_header(&sample.server);
        self.server = Some(server);
        if let Some(reason) = sample.unusable_reason() {
            return self.refuse(reason, None);
        }
        self.refusals.in_a_row = 0;
        let delay = sample.delay.to_seconds_f64().max(self.local_precision);
        self.path_delay.add(delay);
        // The offset is that of the middle of the exchange: while the clock is slewed fast, the
        // difference from the arrival time matters.
        self.take_sample(sample.offset.to_seconds_f64(), delay, now, server)
    }

    /// Files a measurement of `offset` over a path of round trip `delay`, whose answer arrived
    /// `now`: it held half the delay earlier.
    fn take_sample(
        &mut self,
        offset: f64,
        delay: f64,
        now: Monotonic,
        server: ServerInfo,
    ) -> ResponseOutcome {
        let time = now - Duration::from_secs_f64(delay / 2.0);
        let dispersion = server.precision_seconds() + self.local_precision + PHI * delay;
        let measurement = Measurement { offset, delay, dispersion, time, server };
        let filter =
            self.filter.add(FilterSample { offset, delay, dispersion, time }, self.local_precision);
        ResponseOutcome::Sample { measurement, filter }
    }

    /// A broadcast (mode 5) from this server arrived at `t4` (local clock), `now` (monotonic).
    ///
    /// A broadcast carries only the server's transmit time, so the offset needs the one-way
    /// delay: half the least round trip of this source's own client exchanges (its iburst and
    /// occasional polls), `(T3 − T4) + delay / 2`. Until an exchange has measured it broadcasts are
    /// unusable. With a key configured only broadcasts signed by it count; replays (a transmit
    /// time not later than the last one taken) are ignored.
    pub fn handle_broadcast(
        &mut self,
        now: Monotonic,
        packet: &[u8],
        t4: NtpTimestamp,
    ) -> ResponseOutcome {
        let decoded = match NtpPacket::decode(packet) {
            Ok(decoded) => decoded,
            Err(error) => return ResponseOutcome::NotOurs(ResponseError::Malformed(error)),
        };
        let header = decoded.header;
        if header.mode != Mode::Broadcast {
            return ResponseOutcome::NotOurs(ResponseError::UnexpectedMode(header.mode));
        }
        if let Some(key) = &self.config.key
            && !decoded.mac.is_some_and(|mac| key.verify_packet(packet, &mac))
        {
            return ResponseOutcome::NotOurs(ResponseError::BadMac);
        }
        let replayed = !self.last_broadcast_transmit.is_zero()
            && header.transmit_time - self.last_broadcast_transmit <= NtpDuration::ZERO;
        if header.transmit_time.is_zero() || replayed {
            return ResponseOutcome::NotOurs(ResponseError::OriginMismatch);
        }
        self.last_broadcast_transmit = header.transmit_time;
        self.reach |= 1;
        self.unanswered = 0;
        let server = ServerInfo::from_header(&header);
        self.server = Some(server);
        if let Some(reason) = unusable_reason(&header) {
            return self.refuse(reason, None);
        }
        let Some(delay) = self.path_delay.minimum() else {
            return ResponseOutcome::Unusable {
                reason: "waiting for a client exchange to measure the delay to the broadcast server",
                timestamps: None,
            };
        };
        let offset = (header.transmit_time - t4).to_seconds_f64() + delay / 2.0;
        self.take_sample(offset, delay, now, server)
    }

    /// The outstanding request was answered (usable or not): the server is reachable.
    fn answered(&mut self) {
        self.outstanding = None;
        self.reach |= 1;
        self.unanswered = 0;
    }

    /// An answer that cannot be used: counted, and why kept for the status.
    fn refuse(
        &mut self,
        reason: &'static str,
        timestamps: Option<[NtpTimestamp; 4]>,
    ) -> ResponseOutcome {
        self.refusals.total = self.refusals.total.saturating_add(1);
        self.refusals.in_a_row = self.refusals.in_a_row.saturating_add(1);
        self.refusals.last = Some(reason);
        ResponseOutcome::Unusable { reason, timestamps }
    }

    fn handle_kiss(
        &mut self,
        now: Monotonic,
        code: ReferenceId,
        response: &[u8],
    ) -> ResponseOutcome {
        match &code.to_bytes() {
            b"RATE" => {
                // Poll less often: at least one step more, and at least what the server asks.
                let server_poll = response.get(2).map_or(0, |&p| p as i8);
                self.min_poll =
                    (self.poll_exponent() + 1).max(server_poll).min(self.config.maxpoll);
                self.burst_left = 0;
                let interval = 2f64.powi(i32::from(self.poll_exponent()));
                self.next_poll_at = now + Duration::from_secs_f64(interval);
            }
            b"DENY" | b"RSTR" => {
                self.denied = Some(code);
                self.next_poll_at = now + Duration::from_secs(100 * 365 * 86_400);
            }
            _ => {}
        }
        ResponseOutcome::Kiss(code)
    }

    /// The clock was stepped by `step` seconds (local += step): shift kept offsets to match.
    pub fn clock_stepped(&mut self, step: f64) {
        self.filter.shift_offsets(-step);
    }

    /// What selection needs to know about this source at `now`.
    pub fn view(&self) -> SourceView {
        SourceView {
            reach: self.reach,
            polls: self.polls,
            denied: self.denied,
            poll: self.poll_exponent(),
            reference_id: self.reference_id,
            filter: self.filter.output().copied(),
            samples: self.filter.len() as u8,
            min_delay: self.filter.min_delay(),
            path_delay: self.path_delay.minimum(),
            samples_seen: self.path_delay.total,
            recent: self.filter.samples(),
            server: self.server,
            reference_clock: false,
            refused: self.refusals.total,
            refused_in_a_row: self.refusals.in_a_row,
            last_refusal: self.refusals.last,
        }
    }
}

#[cfg(test)]
mod tests;
