//! Starting and stopping the daemon: ordered start (what needs root opened, the clock taken,
//! privileges dropped, then the tasks), one cancellation token, and a clean stop in reverse on
//! SIGTERM or SIGINT.

use crate::access;
use crate::config::{ClockMode as ConfiguredMode, Config, LocalMode};
use crate::control;
use crate::control::ControlContext;
use crate::net::{BindError, bind_server_sockets};
use crate::privileges::{PrivilegeError, drop_privileges};
use crate::server::{ServerCounters, ServingContext, ServingPolicy};
use crate::system_task::{ClockMode, SystemParts, SystemTask, kernel_sync_override};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use syhub_ntp_clock::{
    Clock, ClockControl, ClockError, KernelClock, ObservingClock, SteerPermission, SystemClock,
    measure_precision, steer_permission,
};
use syhub_ntp_proto::auth::KeyStore;
use syhub_ntp_proto::server::ClientLog;
use syhub_ntp_proto::sync::{
    DisciplineConfig, FrequencyStart, LeapMode as CoreLeapMode, LocalMode as CoreLocalMode,
    SyncConfig, Synchroniser,
};
use syhub_ntp_state::{drift, keys};
use syhub_ntp_status::{RequestTally, StatusSnapshot};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Exit code when the clock offset went beyond the panic threshold (systemd must not restart).
pub const EXIT_PANIC: u8 = 4;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("no socket could be opened for [server] listen")]
    NothingBound,
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Privileges(#[from] PrivilegeError),
    #[error(transparent)]
    Keys(#[from] keys::KeysError),
    #[error(transparent)]
    Broadcast(#[from] crate::broadcast::BroadcastError),
    #[error(transparent)]
    Nts(#[from] crate::nts_ke::NtsError),
    #[error("the clock is {offset:+.3} s from its sources, beyond panic_threshold: stopped")]
    Panic { offset: f64 },
}

/// What tasks started beside the daemon (the binary's monitoring surfaces) are given once the
/// status feed exists: they only read the status and counters, join the daemon's task set, and
/// end when `cancel` fires, so the daemon's stop waits for them.
pub struct StatusFeed<'a> {
    pub status: watch::Receiver<StatusSnapshot>,
    /// The serving path's counters, read live (the snapshot's may be seconds old).
    pub counters: Arc<RequestTally>,
    /// The hub's devices, built when asked for.
    pub devices: crate::devices::DevicesView,
    pub cancel: CancellationToken,
    pub tasks: &'a mut JoinSet<()>,
}

/// Runs the daemon on a single-threaded runtime until SIGTERM or SIGINT; `start_companions`
/// starts the caller's tasks beside it (see [`run`]).
pub fn run_blocking(
    config: Config,
    start_companions: impl FnOnce(StatusFeed<'_>),
) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(run(config, start_companions))
}

/// Decides how the clock is handled: steer when configured and permitted, else observe.
fn clock_control(
    mode: ConfiguredMode,
    permission: SteerPermission,
) -> (ClockMode, Box<dyn ClockControl>) {
    let faked = kernel_sync_override();
    match (mode, permission) {
        (ConfiguredMode::Observe, _) => {
            (ClockMode::Observing, Box::new(ObservingClock::new(faked)))
        }
        (ConfiguredMode::Steer, SteerPermission::Permitted) => {
            let kernel = KernelClock::new(faked);
            match kernel.take_control() {
                Ok(()) => (ClockMode::Steering, Box::new(kernel)),
                Err(error) => (
                    ClockMode::SteeringRefused(error.to_string()),
                    Box::new(ObservingClock::new(faked)),
                ),
            }
        }
        (ConfiguredMode::Steer, SteerPermission::Refused(why)) => {
            (ClockMode::SteeringRefused(why), Box::new(ObservingClock::new(faked)))
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT, or a panic-threshold offset. Privileges are dropped
/// during the start, so whatever the caller's companions need root for (ports below 1024, files
/// only root reads) it prepares before calling this; `start_companions` is called once, after
/// the serving threads and the control socket are up, with the status feed.
pub async fn run(
    config: Config,
    start_companions: impl FnOnce(StatusFeed<'_>),
) -> Result<(), RunError> {
    let opened = Opened::open(&config)?;
    let clock = ClockStart::prepare(&config);
    // Everything that needs root is done (ports, sockets, clock control, files; the caller's
    // monitoring ports and password before calling us): give it up before any other thread
    // exists, keeping CAP_SYS_TIME only to steer.
    let own: Vec<&std::path::Path> =
        [config.clock.drift_file.as_deref(), Some(config.nts.keys_file.as_path())]
            .into_iter()
            .flatten()
            .chain([config.control.socket.as_path()])
            .collect();
    let privileges = drop_privileges(&config.server.user, clock.mode == ClockMode::Steering, &own)?;
    if let Some(user) = &privileges.user {
        tracing::info!(
            "running as {user} with {}",
            if privileges.sys_time { "CAP_SYS_TIME only" } else { "no capabilities" }
        );
    }
    let running = Running::start(config, opened, clock, start_companions)?;
    running.until_stopped().await
}

/// What is opened while the daemon is still root, in this order: the keys, the serving sockets
/// (a port that cannot be bound stops the start before anything else happens), broadcast and
/// multicast, NTS-KE, the control socket, the reference clocks' inputs.
struct Opened {
    keys: Arc<KeyStore>,
    sockets: Vec<std::net::UdpSocket>,
    shared_sockets: Vec<std::net::UdpSocket>,
    broadcasting: crate::broadcast::Broadcasting,
    nts: Option<crate::nts_ke::NtsServer>,
    control: Option<tokio::net::UnixListener>,
    refclocks: Vec<crate::system_task::OpenedRefclock>,
}

impl Opened {
    fn open(config: &Config) -> Result<Self, RunError> {
        // The keys file is private to root: read it while we are, and refuse a bad one at once.
        let keys = Arc::new(keys::load(config)?);
        if !keys.is_empty() {
            tracing::info!("{} symmetric key(s) trusted", keys.len());
        }
        let threads = config.server.threads.get();
        let (sockets, shared_sockets) =
            bind_all(config.server.listen.as_slice(), threads, config.server.receive_buffer.0)?;
        // Broadcast sources listen on these sockets (multicast groups joined while privileged),
        // and broadcasts leave from them.
        let broadcasting = crate::broadcast::open(config, &sockets, &keys)?;
        // NTS: certificate, key and cookie keys read, KE ports bound.
        let ntp_port = config.server.listen.as_slice().first().map_or(123, |a| a.port());
        let nts = crate::nts_ke::prepare(&config.nts, ntp_port)?;
        // Monitoring must never stop the time service: without its socket the daemon still
        // serves.
        let control = match control::bind(&config.control.socket) {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!("{error}; `syhub-ntp status` will not reach this daemon");
                None
            }
        };
        // gpsd's root-only segments attached, SOCK sockets bound under /run and PPS devices
        // opened while still root. One that cannot be opened is reported as its problem.
        let refclocks = crate::sources::open_refclocks(config);
        Ok(Self { keys, sockets, shared_sockets, broadcasting, nts, control, refclocks })
    }
}

/// How the clock is handled, and what is known of its frequency at the start.
struct ClockStart {
    clock: Arc<dyn Clock>,
    precision: i8,
    mode: ClockMode,
    control: Box<dyn ClockControl>,
    frequency: FrequencyStart,
    kernel_synchronised: bool,
}

impl ClockStart {
    /// Takes control of the clock (when steering is configured and permitted) and sets the
    /// frequency correction from the drift file, else keeps the kernel's.
    fn prepare(config: &Config) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let precision = measure_precision(clock.as_ref());
        let (mut mode, mut control) = clock_control(config.clock.mode, steer_permission());
        if let ClockMode::SteeringRefused(why) = &mode {
            tracing::warn!(
                "[clock] mode is \"steer\" but the kernel will not let us steer the system clock: \
                 {why}. Serving as in observe mode: the clock is measured and reported, never \
                 changed."
            );
        }
        let drift = match config.clock.drift_file.as_deref().map(drift::read) {
            Some(Ok(Some(ppm))) => {
                tracing::info!("frequency correction {ppm:+.3} ppm from the drift file");
                Some(ppm * 1e-6)
            }
            Some(Err(error)) => {
                tracing::warn!("{error}");
                None
            }
            _ => None,
        };
        let kernel_frequency = control.frequency().unwrap_or(0.0);
        let frequency = drift.unwrap_or(kernel_frequency);
        let mut applied = kernel_frequency;
        if mode == ClockMode::Steering {
            match control.set_frequency(frequency) {
                Ok(()) => applied = frequency,
                Err(error) => (mode, control) = refused(error),
            }
        }
        let kernel_synchronised = control.kernel_synchronised().unwrap_or(false);
        Self {
            clock,
            precision,
            mode,
            control,
            frequency: FrequencyStart { frequency, known: drift.is_some(), applied },
            kernel_synchronised,
        }
    }

    /// The protocol core's synchroniser for `config`, starting from this clock.
    fn synchroniser(&self, config: &Config) -> Synchroniser {
        Synchroniser::new(
            SyncConfig {
                discipline: DisciplineConfig {
                    steer: self.mode == ClockMode::Steering,
                    step_threshold: config.clock.step_threshold,
                    stepout: config.clock.stepout,
                    panic_threshold: config.clock.panic_threshold,
                    max_slew: 0.01,
                    minpoll: config.sources.iter().map(|s| s.minpoll).min().unwrap_or(6),
                    maxpoll: config.sources.iter().map(|s| s.maxpoll).max().unwrap_or(10),
                },
                local_stratum: config.local.enabled.then(|| config.local.stratum.get()),
                local_mode: match config.local.mode {
                    LocalMode::Holdover => CoreLocalMode::Holdover,
                    LocalMode::Always => CoreLocalMode::Always,
                },
                precision: self.precision,
                leap_mode: match config.clock.leap_mode {
                    crate::config::LeapMode::Kernel => CoreLeapMode::Kernel,
                    crate::config::LeapMode::Step => CoreLeapMode::Step,
                    crate::config::LeapMode::Smear => {
                        CoreLeapMode::Smear { window: config.clock.leap_smear_window }
                    }
                },
            },
            self.frequency,
            self.kernel_synchronised,
        )
    }
}

/// The running daemon: the system task, the serving threads and every other task, under one
/// cancellation token.
struct Running {
    system: SystemTask,
    serving_threads: ServingThreads,
    tasks: JoinSet<()>,
    cancel: CancellationToken,
    counters: Arc<ServerCounters>,
    notifier: Arc<crate::notify::Notifier>,
}

impl Running {
    /// Starts everything, privileges dropped: the system task's state, the access list's
    /// upkeep, NTS-KE, broadcasts, the serving threads, the control socket, the caller's
    /// companions, then READY.
    fn start(
        config: Config,
        opened: Opened,
        clock: ClockStart,
        start_companions: impl FnOnce(StatusFeed<'_>),
    ) -> Result<Self, RunError> {
        let Opened { keys, sockets, shared_sockets, broadcasting, nts, control, refclocks } =
            opened;
        let sync = clock.synchroniser(&config);
        let snapshot = sync.snapshot();
        let cancel = CancellationToken::new();
        let (publish, system_snapshot) = watch::channel(snapshot);
        let listening =
            config.sources.iter().any(|s| s.mode == crate::config::SourceMode::Broadcast);
        let (heard_sender, heard) = listening.then(|| tokio::sync::mpsc::channel(64)).unzip();
        let (status_sender, status) = watch::channel(StatusSnapshot::default());
        let origin = Instant::now();
        // The counters hold the start too: every surface reads the uptime live from them.
        let counters = Arc::new(ServerCounters::started_at(origin.into_std()));
        let clients = Arc::new(Mutex::new(ClientLog::new(
            config.server.rate_limit.clients,
            getrandom::u64().unwrap_or(0),
        )));
        let devices = crate::devices::DevicesView::new(clients.clone(), origin, &config.clients);
        let addresses: Vec<String> =
            sockets.iter().filter_map(|s| s.local_addr().ok()).map(|a| a.to_string()).collect();
        let clock_mode = clock.mode.clone();
        let timebase = crate::timebase::Timebase::start();
        let system = SystemTask::new(SystemParts {
            config: config.clone(),
            sync,
            control: clock.control,
            clock_mode: clock.mode,
            clock: clock.clock.clone(),
            timebase,
            publish,
            status: status_sender,
            counters: counters.clone(),
            keys: keys.clone(),
            broadcasts: heard,
            refclocks,
        });

        let mut tasks = JoinSet::new();
        let interfaces = access::Interfaces::now();
        let (rules_sender, rules) =
            watch::channel(Arc::new(access::build(&config.server, &interfaces)));
        tasks.spawn(access::keep_current(
            config.server.clone(),
            interfaces,
            rules_sender,
            cancel.clone(),
        ));
        let rate = &config.server.rate_limit;
        let serving = ServingContext {
            system: system_snapshot,
            rules,
            policy: ServingPolicy {
                deny_action: config.server.deny_action,
                rate_limit: rate.enabled.then_some(rate.limit),
                rate_action: rate.action,
                clock_errors: config.clients.clock_error,
            },
            clock: clock.clock.clone(),
            counters: counters.clone(),
            clients: clients.clone(),
            origin,
            keys,
            broadcasts: heard_sender,
            nts: nts.as_ref().map(|server| server.keyring.clone()),
        };
        if let Some(server) = nts {
            tracing::info!(
                "serving NTS-KE on {}",
                config.nts.listen.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            );
            tasks.spawn(server.serve(cancel.clone()));
        }
        if broadcasting.is_active() {
            tasks.spawn(crate::broadcast::serve(
                broadcasting,
                serving.system.clone(),
                clock.clock.clone(),
                cancel.clone(),
            ));
        }
        let serving_alive = Arc::new(AtomicBool::new(true));
        let serving_threads =
            spawn_serving_threads(sockets, shared_sockets, serving, serving_alive.clone())
                .map_err(RunError::Runtime)?;
        if let Some(listener) = control {
            let context = ControlContext {
                status: status.clone(),
                counters: counters.clone(),
                devices: devices.clone(),
            };
            tasks.spawn(control::serve(
                listener,
                config.control.socket.clone(),
                context,
                cancel.clone(),
            ));
        }
        start_companions(StatusFeed {
            status: status.clone(),
            counters: counters.clone(),
            devices,
            cancel: cancel.clone(),
            tasks: &mut tasks,
        });
        tracing::info!(
            "serving NTP on {}; stratum {}, reference {}, clock mode {clock_mode}, precision \
             2^{} s, {} source(s), control socket {}",
            if addresses.is_empty() { "no address".to_owned() } else { addresses.join(", ") },
            snapshot.stratum,
            snapshot.reference_id.display_for_stratum(snapshot.stratum),
            clock.precision,
            config.sources.len(),
            config.control.socket.display(),
        );
        let notifier = Arc::new(crate::notify::Notifier::from_environment());
        notifier.notify("READY=1");
        tasks.spawn(crate::notify::keep_informed(
            notifier.clone(),
            serving_alive,
            status,
            cancel.clone(),
        ));
        Ok(Self { system, serving_threads, tasks, cancel, counters, notifier })
    }

    /// Runs the system task until a signal (or a panic-threshold offset), then stops the rest in
    /// reverse: every task ends on the token and is awaited, then the serving threads.
    async fn until_stopped(self) -> Result<(), RunError> {
        let Self { system, serving_threads, mut tasks, cancel, counters, notifier } = self;
        // On a signal the system task is cancelled, not dropped, so it stops its sources and
        // writes the drift file if one is due.
        let mut system = std::pin::pin!(system.run(cancel.clone()));
        let finished = tokio::select! {
            _ = wait_for_shutdown_signal() => {
                cancel.cancel();
                (&mut system).await
            }
            finished = &mut system => finished,
        };
        let result = finished.map_err(|panic| RunError::Panic { offset: panic.offset });
        notifier.notify("STOPPING=1");
        cancel.cancel();
        while tasks.join_next().await.is_some() {}
        let _ = tokio::task::spawn_blocking(move || serving_threads.stop()).await;
        tracing::info!(
            received = counters.received.load(Ordering::Relaxed),
            answered = counters.answered.load(Ordering::Relaxed),
            ignored = counters.ignored.load(Ordering::Relaxed),
            "stopped"
        );
        result
    }
}

/// The threads serving NTP, and how to stop them.
struct ServingThreads {
    sockets: Vec<Arc<std::net::UdpSocket>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ServingThreads {
    /// Wakes every thread and waits for it to end.
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for socket in &self.sockets {
            syhub_ntp_sys::net::wake_receivers(socket.as_fd());
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Serves NTP on threads of their own, one per socket, so that nothing the control plane does (a
/// burst of HTTP requests, a status to render) delays an answer. `sockets` holds the first socket
/// of each listen address (which also forwards heard broadcasts), `shared` the others sharing
/// their ports.
fn spawn_serving_threads(
    sockets: Vec<std::net::UdpSocket>,
    shared: Vec<std::net::UdpSocket>,
    context: ServingContext,
    alive: Arc<AtomicBool>,
) -> std::io::Result<ServingThreads> {
    // However a thread ends (even by a panic), the watchdog stops being fed.
    struct Alive(Arc<AtomicBool>);
    impl Drop for Alive {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Relaxed);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut serving =
        ServingThreads { sockets: Vec::new(), stop: stop.clone(), threads: Vec::new() };
    let all = sockets.into_iter().map(|s| (s, true)).chain(shared.into_iter().map(|s| (s, false)));
    for (index, (socket, first)) in all.enumerate() {
        let socket = Arc::new(socket);
        serving.sockets.push(socket.clone());
        let socket = crate::server::ServingSocket::new(socket);
        let (context, stop, alive) = (context.clone(), stop.clone(), Alive(alive.clone()));
        let thread = std::thread::Builder::new()
            .name(format!("ntp-serve-{index}"))
            // The serving loop keeps its buffers on the heap: a small stack suffices.
            .stack_size(256 << 10)
            .spawn(move || {
                let _alive = alive;
                crate::server::serve_socket(socket, context, first, &stop);
            });
        match thread {
            Ok(thread) => serving.threads.push(thread),
            Err(error) => {
                serving.stop();
                return Err(error);
            }
        }
    }
    Ok(serving)
}

fn refused(error: ClockError) -> (ClockMode, Box<dyn ClockControl>) {
    tracing::warn!("cannot steer the system clock: {error}. Serving as in observe mode.");
    (
        ClockMode::SteeringRefused(error.to_string()),
        Box::new(ObservingClock::new(kernel_sync_override())),
    )
}

/// Binds every listen address, `threads` sockets each: the first of each address, then the others
/// sharing their ports. Permission and address-in-use errors stop the start; an address or family
/// this host lacks (no IPv6) is skipped with a warning as long as something else is bound.
fn bind_all(
    addresses: &[std::net::SocketAddr],
    threads: usize,
    receive_buffer: usize,
) -> Result<(Vec<std::net::UdpSocket>, Vec<std::net::UdpSocket>), RunError> {
    let (mut first, mut shared) = (Vec::new(), Vec::new());
    let mut skipped = 0;
    for &address in addresses {
        match bind_server_sockets(address, threads, receive_buffer) {
            Ok(sockets) => {
                let mut sockets = sockets.into_iter();
                first.extend(sockets.next());
                shared.extend(sockets);
            }
            Err(error @ BindError::Unavailable { .. }) => {
                tracing::warn!("{error}; skipping it");
                skipped += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
    if first.is_empty() && skipped > 0 {
        return Err(RunError::NothingBound);
    }
    Ok((first, shared))
}

async fn wait_for_shutdown_signal() {
    let (Ok(mut terminate), Ok(mut interrupt)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    let which = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!("{which} received, shutting down");
}
