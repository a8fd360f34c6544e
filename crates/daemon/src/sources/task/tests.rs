//! A source task without root or a network: its socket is wired to a simulated server, and
//! tokio's paused clock runs the polls, bursts and backoff in virtual time.

use super::*;
use std::time::Duration;
use syhub_ntp_proto::NtpDuration;
use syhub_ntp_proto::packet::ReferenceId;
use syhub_ntp_proto::server::{Answer, SystemSnapshot, answer};
use syhub_ntp_proto::source::SourceConfig;
use tokio::sync::Mutex;
use tokio::time::Instant;

const SERVER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)), 123);
/// One-way delay of the simulated path.
const ONE_WAY: Duration = Duration::from_millis(1);

/// The local clock: a fixed epoch plus tokio's (virtual) time, plus the steps made to it.
struct VirtualClock {
    epoch: NtpTimestamp,
    start: Instant,
    stepped: std::sync::Mutex<f64>,
}

impl VirtualClock {
    fn new() -> Self {
        Self {
            epoch: NtpTimestamp::from_unix(1_800_000_000, 0),
            start: Instant::now(),
            stepped: std::sync::Mutex::new(0.0),
        }
    }

    /// True time: what a correct clock reads.
    fn true_time(&self) -> NtpTimestamp {
        self.epoch + NtpDuration::from_seconds_f64(self.start.elapsed().as_secs_f64())
    }

    fn step(&self, by: f64) {
        *self.stepped.lock().expect("clock") += by;
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> NtpTimestamp {
        let stepped = *self.stepped.lock().expect("clock");
        self.true_time() + NtpDuration::from_seconds_f64(stepped)
    }
}

/// A socket whose sends reach a simulated server and whose receives are its answers.
struct WiredSocket {
    to_server: mpsc::UnboundedSender<Vec<u8>>,
    answers: Mutex<mpsc::UnboundedReceiver<(Vec<u8>, SocketAddr)>>,
    clock: Arc<VirtualClock>,
}

impl SourceSocket for WiredSocket {
    async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let Some((packet, peer)) = self.answers.lock().await.recv().await else {
            return std::future::pending().await;
        };
        buf[..packet.len()].copy_from_slice(&packet);
        Ok(Received {
            len: packet.len(),
            peer,
            kernel_time: Some(self.clock.now()),
            arrived_on: None,
            truncated: false,
        })
    }

    async fn send(
        &self,
        packet: &mut [u8],
        to: SocketAddr,
        clock: &dyn Clock,
    ) -> io::Result<NtpTimestamp> {
        assert_eq!(to, SERVER);
        let t1 = clock.now();
        let _ = self.to_server.send(packet.to_vec());
        Ok(t1)
    }
}

/// A server `offset` seconds ahead of true time that answers after `ONE_WAY` while `answering`
/// says so; every request's arrival (virtual time) is recorded.
struct Server {
    offset: f64,
    answering: Arc<std::sync::atomic::AtomicBool>,
    arrivals: Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl Server {
    fn spawn(
        self,
        clock: Arc<VirtualClock>,
        mut requests: mpsc::UnboundedReceiver<Vec<u8>>,
        answers: mpsc::UnboundedSender<(Vec<u8>, SocketAddr)>,
    ) {
        tokio::spawn(async move {
            while let Some(request) = requests.recv().await {
                tokio::time::sleep(ONE_WAY).await;
                self.arrivals.lock().expect("arrivals").push(Instant::now());
                if !self.answering.load(Ordering::Relaxed) {
                    continue;
                }
                let now = clock.true_time() + NtpDuration::from_seconds_f64(self.offset);
                let mut snapshot = SystemSnapshot::local_clock(1, -20, now);
                snapshot.reference_id = ReferenceId::from_bytes(*b"GPS\0");
                let mut reply = [0u8; 64];
                if let Answer::Reply(prepared) = answer(&request, now, &snapshot, &mut reply) {
                    prepared.stamp_transmit_time(&mut reply, now);
                    let (answers, reply) = (answers.clone(), reply[..prepared.len].to_vec());
                    tokio::spawn(async move {
                        tokio::time::sleep(ONE_WAY).await;
                        let _ = answers.send((reply, SERVER));
                    });
                }
            }
        });
    }
}

/// A running source task over a wired socket, and what it reports.
struct Harness {
    reports: mpsc::Receiver<SourceReport>,
    commands: watch::Sender<SourceCommands>,
    cancel: CancellationToken,
    clock: Arc<VirtualClock>,
    answering: Arc<std::sync::atomic::AtomicBool>,
    arrivals: Arc<std::sync::Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

fn start(offset: f64) -> Harness {
    let clock = Arc::new(VirtualClock::new());
    let (to_server, requests) = mpsc::unbounded_channel();
    let (answers_tx, answers) = mpsc::unbounded_channel();
    let answering = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let arrivals = Arc::new(std::sync::Mutex::new(Vec::new()));
    Server { offset, answering: answering.clone(), arrivals: arrivals.clone() }.spawn(
        clock.clone(),
        requests,
        answers_tx,
    );
    let socket = WiredSocket { to_server, answers: Mutex::new(answers), clock: clock.clone() };
    let (reports_tx, reports) = mpsc::channel(64);
    let (commands, commands_rx) = watch::channel(SourceCommands::default());
    let cancel = CancellationToken::new();
    let setup = SourceTaskSetup {
        id: SourceId::new(7),
        address: SERVER,
        source: NtpSource::new(
            SourceConfig::default(),
            ReferenceId::for_server(SERVER.ip()),
            -20,
            Monotonic::ZERO,
        ),
        nts: None,
        broadcasts: None,
        clock: clock.clone(),
        timebase: crate::timebase::Timebase::tokio(),
        reports: reports_tx,
        commands: commands_rx,
        cancel: cancel.clone(),
    };
    let task = tokio::spawn(drive_source(setup, socket));
    Harness { reports, commands, cancel, clock, answering, arrivals, task }
}

impl Harness {
    /// Every report until `until` (virtual seconds from now).
    async fn reports_for(&mut self, seconds: u64) -> Vec<SourceReport> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut reports = Vec::new();
        while let Ok(Some(report)) = tokio::time::timeout_at(deadline, self.reports.recv()).await {
            reports.push(report);
        }
        reports
    }

    /// Seconds between the requests the server received.
    fn request_gaps(&self) -> Vec<f64> {
        let arrivals = self.arrivals.lock().expect("arrivals");
        arrivals.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect()
    }
}

fn samples(reports: &[SourceReport]) -> Vec<f64> {
    reports
        .iter()
        .filter_map(|r| match &r.event {
            SourceEvent::Sample(m) => Some(m.offset),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn iburst_sends_six_requests_two_seconds_apart_then_polls_at_minpoll() {
    let mut harness = start(0.010);
    let reports = harness.reports_for(200).await;
    let offsets = samples(&reports);
    assert_eq!(offsets.len(), 6 + 2, "a burst, then polls at 64 s: {offsets:?}");
    for offset in &offsets {
        // The path is symmetric and the server 10 ms ahead: measured to the nanosecond.
        assert!((offset - 0.010).abs() < 1e-6, "{offsets:?}");
    }
    assert!(reports.iter().all(|r| r.id == SourceId::new(7)));
    let gaps = harness.request_gaps();
    assert!(gaps[..5].iter().all(|g| (g - 2.0).abs() < 0.01), "burst spacing: {gaps:?}");
    // After the burst: 2^6 s and up to 10 % more, the jitter that keeps sources apart.
    assert!(gaps[5..].iter().all(|g| (64.0..=70.5).contains(g)), "poll gaps: {gaps:?}");
    let last = reports.last().expect("reports").view;
    assert_eq!(last.reach, 0xff);
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_is_polled_ever_less_often_and_every_poll_is_reported() {
    let mut harness = start(0.0);
    harness.answering.store(false, Ordering::Relaxed);
    let reports = harness.reports_for(4 * 3600).await;
    assert!(samples(&reports).is_empty());
    assert!(reports.iter().all(|r| r.event == SourceEvent::Polled));
    assert_eq!(reports.last().expect("reports").view.reach, 0);
    let gaps = harness.request_gaps();
    // The burst gives up after two losses; polls back off after four unanswered ones, up to
    // maxpoll (2^10 s, and up to 10 % of jitter).
    assert_eq!(&gaps[..2], &[2.0, 2.0], "{gaps:?}");
    assert!(gaps[2..5].iter().all(|g| (64.0..70.5).contains(g)), "{gaps:?}");
    assert!(gaps.windows(2).skip(4).all(|w| w[1] >= w[0] * 0.9), "never faster: {gaps:?}");
    assert!(gaps.iter().all(|&g| g < 1024.0 * 1.1 + 0.5), "{gaps:?}");
    assert!(gaps.last().is_some_and(|&g| g >= 1024.0), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn a_clock_step_shifts_the_samples_the_source_holds() {
    let mut harness = start(0.010);
    let before = harness.reports_for(20).await;
    let filter = before.last().expect("reports").view.filter.expect("a filter");
    assert!((filter.offset - 0.010).abs() < 1e-6);
    // The system task stepped the clock 10 ms forward and tells its sources.
    harness.clock.step(0.010);
    harness.commands.send_modify(|c| c.steps_total += 0.010);
    let after = harness.reports_for(100).await;
    let filter = after.last().expect("reports").view.filter.expect("a filter");
    assert!(filter.offset.abs() < 1e-6, "the old samples were shifted: {filter:?}");
    assert!(samples(&after).iter().all(|o| o.abs() < 1e-6), "{:?}", samples(&after));
}

#[tokio::test(start_paused = true)]
async fn cancelling_ends_the_task() {
    let mut harness = start(0.0);
    harness.reports_for(5).await;
    harness.cancel.cancel();
    tokio::time::timeout(Duration::from_secs(1), &mut harness.task)
        .await
        .expect("the task ends at once")
        .expect("without a panic");
}
