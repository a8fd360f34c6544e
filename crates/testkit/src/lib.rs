//! Test support: network namespaces the test creates, daemons started inside them under
//! `setpriv --bounding-set -sys_time` (so the kernel refuses any clock change), real clients run
//! the same way, sockets opened inside a namespace, and an impairment relay ([`relay`]) to put
//! between a client and a server. Everything is ended by PID on drop.

#![forbid(unsafe_code)]

pub mod relay;

pub use relay::{DirectionStats, Impairment, Relay, RelayConfig, RelayStats};

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(label: &str) -> String {
    format!("syhub-{label}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Fails the test with a clear message unless it can create namespaces and drop CAP_SYS_TIME.
pub fn require_namespaces() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests create network namespaces: run them as root"
    );
    for tool in ["ip", "setpriv"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "`{tool}` is needed: apt-get install iproute2 util-linux"
        );
    }
}

fn run_checked(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().expect("spawn");
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(unique(label));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    /// Writes a daemon config, with `@DIR@` standing for this directory.
    pub fn write_config(&self, name: &str, config: &str) -> PathBuf {
        self.write(name, &config.replace("@DIR@", path_str(&self.0)))
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A network namespace with loopback up, deleted on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(label: &str) -> Self {
        require_namespaces();
        let name = unique(label);
        run_checked("ip", &["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", &self.name, "ip"];
        full.extend_from_slice(args);
        run_checked("ip", &full);
    }

    /// Connects this namespace to `other` with a veth pair: `here` (interface name, address/prefix)
    /// on this side and `there` on the other, both up.
    pub fn link(&self, here: (&str, &str), other: &NetNs, there: (&str, &str)) {
        self.ip(&[
            "link",
            "add",
            here.0,
            "type",
            "veth",
            "peer",
            "name",
            there.0,
            "netns",
            &other.name,
        ]);
        self.ip(&["addr", "add", here.1, "dev", here.0]);
        other.ip(&["addr", "add", there.1, "dev", there.0]);
        self.ip(&["link", "set", here.0, "up"]);
        other.ip(&["link", "set", there.0, "up"]);
    }

    /// Brings interface `name` up or down (to cut a link).
    pub fn set_link(&self, name: &str, up: bool) {
        self.ip(&["link", "set", name, if up { "up" } else { "down" }]);
    }

    /// A command that runs `program` inside the namespace without CAP_SYS_TIME.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args([
            "netns",
            "exec",
            &self.name,
            "setpriv",
            "--bounding-set",
            "-sys_time",
            program,
        ]);
        command
    }

    /// Runs `program ARGS` inside the namespace to completion, killing it after `timeout`.
    pub fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Output {
        let mut command = self.command(program);
        command.args(args);
        run_with_timeout(command, timeout)
    }

    /// A UDP socket bound to `address` inside this namespace, usable from the test.
    /// Runs `work` on a new thread that has entered this namespace (sockets it opens live here).
    pub fn spawn_inside<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let name = self.name.clone();
        std::thread::spawn(move || {
            enter_netns(&name);
            work()
        })
    }

    pub fn udp_socket(&self, address: &str) -> UdpSocket {
        let name = self.name.clone();
        let address: SocketAddr = address.parse().expect("socket address");
        std::thread::spawn(move || {
            enter_netns(&name);
            let socket = UdpSocket::bind(address).expect("bind test socket");
            socket.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
            socket
        })
        .join()
        .expect("socket thread")
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Moves the calling thread (only) into the network namespace named `name`.
pub(crate) fn enter_netns(name: &str) {
    let ns = std::fs::File::open(format!("/run/netns/{name}")).expect("open netns");
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

/// Spawns `command` with captured output and waits at most `timeout`, killing it (by PID) after.
pub fn run_with_timeout(mut command: Command, timeout: Duration) -> Output {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("spawn");
    let pid = child.id() as i32;
    let (done, wait) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done.send(());
        output
    });
    if wait.recv_timeout(timeout).is_err() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    waiter.join().expect("waiter").expect("output")
}

/// A running process, killed by PID on drop; its stderr (and stdout) lines are collected.
pub struct Process {
    child: Option<Child>,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    pub fn spawn(mut command: Command) -> Self {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Self { child: Some(child), lines }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a line containing `needle` appears, or panics after `timeout` with the log.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                std::thread::sleep(Duration::from_millis(100));
                panic!("process exited ({status}) before logging {needle:?}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "no {needle:?} within {timeout:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Sends `signal` and waits (at most 10 s) for the exit status.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) -> ExitStatus {
        let mut child = self.child.take().expect("process already stopped");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(50)); // let the reader threads drain
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("process did not stop on {signal:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Our daemon, running in a namespace on a config the test writes.
pub struct Daemon {
    pub process: Process,
    binary: String,
    netns: String,
    dir: TempDir,
}

impl Daemon {
    /// Starts `BINARY run` (the syhub-ntp binary under test) in `ns` on `config` and waits for its
    /// "serving NTP on" line. `@DIR@` in the config stands for the daemon's own scratch directory.
    pub fn start(binary: &str, ns: &NetNs, config: &str) -> Self {
        Self::start_with_env(binary, ns, config, &[])
    }

    /// Like [`Daemon::start`], with extra environment variables.
    pub fn start_with_env(binary: &str, ns: &NetNs, config: &str, env: &[(&str, &str)]) -> Self {
        Self::launch(binary, ns, config, env, None)
    }

    /// Like [`Daemon::start`], allowed `limit` open files (soft and hard, set by `prlimit`), as a
    /// unit's `LimitNOFILE=` would.
    pub fn start_with_open_files(binary: &str, ns: &NetNs, config: &str, limit: u64) -> Self {
        Self::launch(binary, ns, config, &[], Some(limit))
    }

    fn launch(
        binary: &str,
        ns: &NetNs,
        config: &str,
        env: &[(&str, &str)],
        open_files: Option<u64>,
    ) -> Self {
        let dir = TempDir::new("daemon");
        let config = config.replace("@DIR@", path_str(&dir.0));
        let path = dir.write("config.toml", &config);
        // prlimit sets the limit and then executes the daemon: the PID stays the daemon's.
        let mut command = match open_files {
            Some(limit) => {
                let mut command = ns.command("prlimit");
                command.arg(format!("--nofile={limit}:{limit}")).arg(binary);
                command
            }
            None => ns.command(binary),
        };
        command.args(["run", "--log-level", "debug", "--config"]).arg(&path);
        command.envs(env.iter().copied());
        let mut process = Process::spawn(command);
        process.wait_for_line("serving NTP on", Duration::from_secs(10));
        Self { process, binary: binary.to_owned(), netns: ns.name.clone(), dir }
    }

    /// The daemon's scratch directory (its config, control socket and drift file).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// The daemon's status, from `syhub-ntp status --json` on its control socket.
    pub fn status(&self) -> serde_json::Value {
        let socket = self.dir.0.join("control.sock");
        let mut command = Command::new(&self.binary);
        command.args(["status", "--json", "--socket"]).arg(&socket);
        let output = run_with_timeout(command, Duration::from_secs(10));
        assert!(
            output.status.success(),
            "status failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.process.log()
        );
        serde_json::from_slice(&output.stdout).expect("status JSON")
    }

    /// Polls the status until `ready` holds, for at most `timeout`; returns the last status.
    pub fn wait_for_status(
        &self,
        timeout: Duration,
        what: &str,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.status();
            if ready(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {timeout:?}; last status:\n{}\nlog:\n{}",
                serde_json::to_string_pretty(&status).unwrap_or_default(),
                self.process.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The network namespace it runs in.
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Stops it with SIGTERM, asserts a clean exit and returns its log.
    pub fn stop(mut self) -> String {
        let status = self.process.stop_with(nix::sys::signal::Signal::SIGTERM);
        let log = self.process.log();
        assert!(status.success(), "daemon exited with {status}:\n{log}");
        assert!(log.contains("stopped"), "no clean stop in the log:\n{log}");
        log
    }
}

/// A bare NTP request of `version` and `mode`, with `serial` as its transmit timestamp (so its
/// answer can be told from others'), built byte by byte as a test sees the wire.
pub fn raw_request(version: u8, mode: u8, serial: u64) -> [u8; 48] {
    let mut packet = [0u8; 48];
    packet[0] = (version << 3) | mode;
    packet[40..48].copy_from_slice(&serial.to_be_bytes());
    packet
}

/// The value of `key=N` in the daemon's "stopped" log line.
pub fn counter_in_log(log: &str, key: &str) -> u64 {
    let line = log.lines().rev().find(|l| l.contains("stopped")).expect("stopped line");
    let start = line.find(&format!("{key}=")).expect("counter in stopped line") + key.len() + 1;
    line[start..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// A config serving on port 123 on both families, with the given extra TOML appended.
pub fn config_on_port_123(local: &str) -> String {
    test_config(&["0.0.0.0:123", "[::]:123"], "", local)
}

/// A daemon config for tests: listening on `listen`, with the `[[source]]` tables in `sources`
/// (none if empty), `local` as the body of `[local]` (`mode = "always"` if empty), observe mode, no
/// rate limit (tests ask often), and its drift file and control socket in its own scratch directory.
pub fn test_config(listen: &[&str], sources: &str, local: &str) -> String {
    let listen: Vec<String> = listen.iter().map(|a| format!("\"{a}\"")).collect();
    let sources = if sources.is_empty() { "source = []\n".to_owned() } else { sources.to_owned() };
    let local = if local.is_empty() { "mode = \"always\"\n" } else { local };
    format!(
        "{sources}\n[server]\nlisten = [{}]\n\n[server.rate_limit]\nenabled = false\n\n[clock]\nmode = \"observe\"\ndrift_file = \"@DIR@/drift\"\n\n\
         [local]\n{local}\n\n[control]\nsocket = \"@DIR@/control.sock\"\n",
        listen.join(", ")
    )
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// chronyd as an NTP server that never touches the clock (`-x`), serving its local clock.
pub struct Chronyd {
    pub process: Process,
    _dir: TempDir,
}

impl Chronyd {
    /// Starts chronyd in `ns` on `port` with `local stratum STRATUM`, answering anyone.
    pub fn server(ns: &NetNs, port: u16, stratum: u8) -> Self {
        Self::server_with(ns, port, stratum, "")
    }

    /// Like [`Chronyd::server`], with `extra` directives (such as a `keyfile`).
    pub fn server_with(ns: &NetNs, port: u16, stratum: u8, extra: &str) -> Self {
        let dir = TempDir::new("chronyd");
        let path = dir.write("chrony.conf", &Self::config(&dir, port, stratum, extra));
        let mut command = ns.command("chronyd");
        command.args(["-x", "-d", "-u", "root", "-f"]).arg(&path);
        let mut process = Process::spawn(command);
        process.wait_for_line("Disabled control of system clock", Duration::from_secs(10));
        Self { process, _dir: dir }
    }
}

impl Chronyd {
    /// The config of a chronyd serving its local clock at `stratum` on `port` to anyone, with no
    /// command port and its pid file in `dir`, plus `extra` directives.
    pub fn config(dir: &TempDir, port: u16, stratum: u8, extra: &str) -> String {
        format!(
            "port {port}\nlocal stratum {stratum}\nallow all\ncmdport 0\nbindcmdaddress /\npidfile {}\n{extra}\n",
            path_str(&dir.0.join("chronyd.pid"))
        )
    }
}

/// Mosquitto, the MQTT broker, listening on loopback in a namespace.
pub struct Mosquitto {
    pub process: Process,
    _dir: TempDir,
}

impl Mosquitto {
    pub fn start(ns: &NetNs, port: u16) -> Self {
        Self::start_with(ns, port, "")
    }

    /// With `extra` appended to its configuration (another listener, TLS files).
    pub fn start_with(ns: &NetNs, port: u16, extra: &str) -> Self {
        let dir = TempDir::new("mosquitto");
        let config = format!(
            "user root\nper_listener_settings false\nallow_anonymous true\npersistence false\n\
             listener {port} 127.0.0.1\n{extra}"
        );
        let path = dir.write("mosquitto.conf", &config);
        let mut command = ns.command("mosquitto");
        command.args(["-v", "-c"]).arg(&path);
        let mut process = Process::spawn(command);
        process.wait_for_line("running", Duration::from_secs(10));
        Self { process, _dir: dir }
    }
}

/// Headless Chromium loading a page in a namespace, with the flags that keep it off the network.
pub fn chromium(ns: &NetNs, url: &str, extra: &[&str]) -> Output {
    let profile = TempDir::new("chromium");
    let profile_flag = format!("--user-data-dir={}", path_str(&profile.0));
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=8000",
        &profile_flag,
    ];
    args.extend_from_slice(extra);
    args.push(url);
    ns.run("chromium", &args, Duration::from_secs(60))
}
