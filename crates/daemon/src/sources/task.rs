//! One upstream server: polls when its core state says, receives answers with kernel timestamps,
//! and reports every change to the system task.

use super::nts::{Association, key_exchange};
use crate::net::{Received, TimestampedSocket};
use crate::timebase::Timebase;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use syhub_ntp_clock::Clock;
use syhub_ntp_proto::NtpTimestamp;
use syhub_ntp_proto::nts::fields::NtsAnswerError;
use syhub_ntp_proto::source::{NtpSource, ResponseOutcome, SourceId, SourceView};
use syhub_ntp_proto::system::SourceEvent;
use syhub_ntp_proto::time::Monotonic;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

#[cfg(test)]
mod tests;

/// What the system task tells every source.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct SourceCommands {
    /// Poll exponent the system advises.
    pub poll: i8,
    /// Sum of every clock step so far, seconds: a source shifts its samples by what it has not
    /// yet seen.
    pub steps_total: f64,
    /// The clock has been synchronised since start: certificate dates can be checked now.
    pub synchronised: bool,
}

/// The clock steps a source task has passed on to its protocol-core state.
#[derive(Debug, Clone, Copy)]
pub(super) struct StepsSeen(f64);

impl StepsSeen {
    /// Steps made before the task starts are already in the clock it reads.
    pub(super) fn at_start(commands: &watch::Receiver<SourceCommands>) -> Self {
        Self(commands.borrow().steps_total)
    }

    /// The step not yet passed on (seconds), if any, now counted as passed on.
    pub(super) fn unseen(&mut self, commands: &SourceCommands) -> Option<f64> {
        let unseen = commands.steps_total - self.0;
        self.0 = commands.steps_total;
        (unseen != 0.0).then_some(unseen)
    }
}

/// A broadcast (mode 5) the serving loop received, for the source following its sender.
#[derive(Debug, Clone)]
pub(crate) struct HeardBroadcast {
    pub packet: Vec<u8>,
    pub from: SocketAddr,
    /// Kernel receive time (local clock).
    pub received_at: NtpTimestamp,
}

/// A source's report to the system task.
#[derive(Debug, Clone)]
pub(crate) struct SourceReport {
    pub id: SourceId,
    pub view: SourceView,
    pub event: SourceEvent,
}

/// What an NTS source needs for its key exchanges.
#[derive(Clone)]
pub(crate) struct NtsSetup {
    pub tls: Arc<rustls::ClientConfig>,
    /// The NTS-KE server's name, as its certificate must show it.
    pub host: String,
    /// Set once the clock has been synchronised: from then on certificate dates are checked
    /// even with `ignore_certificate_time`.
    pub clock_trusted: Arc<std::sync::atomic::AtomicBool>,
}

/// Everything a source task starts with.
pub(crate) struct SourceTaskSetup {
    pub id: SourceId,
    /// The server (for an NTS source, its NTS-KE server).
    pub address: SocketAddr,
    pub source: NtpSource,
    pub nts: Option<NtsSetup>,
    /// A broadcast source's feed of the broadcasts heard from its server.
    pub broadcasts: Option<mpsc::Receiver<HeardBroadcast>>,
    pub clock: Arc<dyn Clock>,
    /// The time base of the core's monotonic time.
    pub timebase: Timebase,
    pub reports: mpsc::Sender<SourceReport>,
    pub commands: watch::Receiver<SourceCommands>,
    /// Stops the task.
    pub cancel: CancellationToken,
}

/// What a source task needs of its socket: each datagram with its sender and kernel receive
/// time, and sends whose transmit time is read just before they leave. The daemon's is a
/// [`TimestampedSocket`]; tests give one wired to a simulated server in tokio's paused time.
pub(crate) trait SourceSocket: Send + Sync + 'static {
    /// The next datagram, into `buf`.
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<Received>> + Send;
    /// Sends `packet` to `to`; the transmit time (T1), read from `clock` just before the send.
    fn send(
        &self,
        packet: &mut [u8],
        to: SocketAddr,
        clock: &dyn Clock,
    ) -> impl Future<Output = io::Result<NtpTimestamp>> + Send;
}

impl SourceSocket for TimestampedSocket {
    fn recv(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<Received>> + Send {
        TimestampedSocket::recv(self, buf)
    }

    async fn send(
        &self,
        packet: &mut [u8],
        to: SocketAddr,
        clock: &dyn Clock,
    ) -> io::Result<NtpTimestamp> {
        let sent_at = AtomicU64::new(0);
        self.send_stamped(packet, to, clock, |_, t1| {
            sent_at.store(t1.to_bits(), Ordering::Relaxed)
        })
        .await?;
        Ok(NtpTimestamp::from_bits(sent_at.load(Ordering::Relaxed)))
    }
}

/// Starts the task for a source on a socket of its own. It stops when `setup.cancel` fires.
pub(crate) fn spawn_source(setup: SourceTaskSetup) {
    tokio::spawn(async move {
        match open_socket(setup.address).await {
            Ok(socket) => drive_source(setup, socket).await,
            Err(error) => {
                let (id, view) = (setup.id, setup.source.view());
                let event = SourceEvent::Failed(format!("cannot open a socket: {error}"));
                let _ = setup.reports.send(SourceReport { id, view, event }).await;
                setup.cancel.cancelled().await;
            }
        }
    });
}

/// Runs a source over `socket` until `setup.cancel` fires (or the system task is gone).
pub(crate) async fn drive_source<S: SourceSocket>(setup: SourceTaskSetup, socket: S) {
    let SourceTaskSetup {
        id,
        address,
        source,
        nts,
        broadcasts,
        clock,
        timebase,
        reports,
        commands,
        cancel,
    } = setup;
    let mut task = SourceTask {
        id,
        address,
        source,
        clock,
        timebase,
        reports,
        socket,
        broadcasts,
        steps_seen: StepsSeen::at_start(&commands),
        ke_server: address,
        nts,
        association: None,
        commands,
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = task.run() => {}
    }
}

/// An unconnected socket of the server's family: connecting would fail for good when the hub
/// boots with no route yet, while a send to an unreachable server only fails that poll.
async fn open_socket(address: SocketAddr) -> std::io::Result<TimestampedSocket> {
    let local: SocketAddr =
        if address.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = std::net::UdpSocket::bind(local)?;
    socket.set_nonblocking(true)?;
    TimestampedSocket::new(socket)
}

struct SourceTask<S> {
    id: SourceId,
    address: SocketAddr,
    source: NtpSource,
    clock: Arc<dyn Clock>,
    timebase: Timebase,
    reports: mpsc::Sender<SourceReport>,
    commands: watch::Receiver<SourceCommands>,
    socket: S,
    broadcasts: Option<mpsc::Receiver<HeardBroadcast>>,
    steps_seen: StepsSeen,
    /// For an NTS source: its NTS-KE server, setup and current association.
    ke_server: SocketAddr,
    nts: Option<NtsSetup>,
    association: Option<Association>,
}

impl<S: SourceSocket> SourceTask<S> {
    fn now(&self) -> Monotonic {
        self.timebase.now()
    }

    async fn run(&mut self) {
        let mut buf = [0u8; 2048];
        loop {
            let due = self.timebase.instant_at(self.source.next_poll_at());
            tokio::select! {
                _ = tokio::time::sleep_until(due) => self.poll().await,
                received = self.socket.recv(&mut buf) => match received {
                    // Only the server's own answers count (the socket is not connected).
                    Ok(received) if received.peer != self.address => continue,
                    Ok(received) => {
                        let now = self.now();
                        let t4 = received.kernel_time.unwrap_or_else(|| self.clock.now());
                        if let Some(association) = self.association.as_mut() {
                            match association.accept(&buf[..received.len]) {
                                Ok(()) => {}
                                Err(NtsAnswerError::Nak) => {
                                    self.association = None;
                                    self.report(SourceEvent::Unusable("NTS NAK: the server no longer knows our cookie; keys again")).await;
                                    continue;
                                }
                                // Not authenticated, or not for our request: not ours.
                                Err(_) => continue,
                            }
                        }
                        let outcome = self.source.handle_response(now, &buf[..received.len], t4);
                        self.report_outcome(outcome).await;
                    }
                    // ICMP port unreachable and the like: the reach register tells the story.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                },
                Some(heard) = recv_or_pending(&mut self.broadcasts) => {
                    let now = self.now();
                    let outcome = self.source.handle_broadcast(now, &heard.packet, heard.received_at);
                    self.report_outcome(outcome).await;
                }
                changed = self.commands.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let commands = *self.commands.borrow_and_update();
                    self.source.set_system_poll(commands.poll);
                    if let Some(setup) = self.nts.as_ref().filter(|_| commands.synchronised) {
                        setup.clock_trusted.store(true, Ordering::Relaxed);
                    }
                    if let Some(step) = self.steps_seen.unseen(&commands) {
                        self.source.clock_stepped(step);
                    }
                }
            }
        }
    }

    /// Reports what an answer or a broadcast came to; packets not ours are ignored silently.
    async fn report_outcome(&mut self, outcome: ResponseOutcome) {
        let event = match outcome {
            ResponseOutcome::Sample { measurement, .. } => SourceEvent::Sample(measurement),
            ResponseOutcome::Unusable { reason, timestamps } => {
                if let Some([t1, t2, t3, t4]) = timestamps {
                    tracing::debug!(
                        "{}: answer refused: {reason}: T1 {t1} T2 {t2} T3 {t3} T4 {t4} (T3 − T2 \
                         {:+.9} s, round trip {:+.9} s)",
                        self.address,
                        (t3 - t2).to_seconds_f64(),
                        (t4 - t1).to_seconds_f64(),
                    );
                }
                SourceEvent::Unusable(reason)
            }
            ResponseOutcome::Kiss(code) => SourceEvent::Kiss(code),
            ResponseOutcome::NotOurs(_) => return,
        };
        self.report(event).await;
    }

    async fn poll(&mut self) {
        let now = self.now();
        let cookie = NtpTimestamp::from_bits(
            getrandom::u64().unwrap_or_else(|_| self.clock.now().to_bits()),
        );
        let jitter = (getrandom::u32().unwrap_or(0) as f64) / (u32::MAX as f64 + 1.0);
        let mut request = self.source.poll(now, cookie, jitter);
        // An NTS request is the plain one wrapped with a cookie and an authenticator.
        let mut protected = None;
        if let Some(setup) = self.nts.clone() {
            let empty = self.association.as_ref().is_none_or(|a| a.cookies.is_empty());
            if empty {
                match key_exchange(setup.tls, &setup.host, self.ke_server).await {
                    Ok(association) => {
                        self.address = association.ntp_server;
                        self.association = Some(association);
                    }
                    Err(error) => {
                        self.association = None;
                        self.report(SourceEvent::Failed(format!("NTS-KE: {error}"))).await;
                        return;
                    }
                }
            }
            protected = self.association.as_mut().and_then(|a| a.protect(&request));
            if protected.is_none() {
                return;
            }
        }
        let packet: &mut [u8] = match protected.as_mut() {
            Some(protected) => protected,
            None => &mut request,
        };
        match self.socket.send(packet, self.address, self.clock.as_ref()).await {
            Ok(t1) => {
                self.source.sent(t1);
                self.report(SourceEvent::Polled).await;
            }
            Err(error) => self.report(SourceEvent::Failed(error.to_string())).await,
        }
    }

    async fn report(&self, event: SourceEvent) {
        let report = SourceReport { id: self.id, view: self.source.view(), event };
        let _ = self.reports.send(report).await;
    }
}

/// The next message from `receiver`, or never when there is none (a `select!` arm that stays
/// quiet).
pub(crate) async fn recv_or_pending<T>(receiver: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match receiver {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}
