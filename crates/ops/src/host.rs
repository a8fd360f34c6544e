//! The system being changed: files under a root directory (`/`, or a tree for tests and images),
//! commands run for real or, in a dry run, only described. Every change is reported as a line.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Host {
    root: PathBuf,
    dry_run: bool,
    /// One line per action taken (or, in a dry run, that would be).
    pub report: Vec<String>,
}

impl Host {
    pub fn new(root: &Path, dry_run: bool) -> Self {
        Self { root: root.to_owned(), dry_run, report: Vec::new() }
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Whether this is the running system rather than a tree under another directory.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `absolute` (such as `/etc/syhub-ntp`) under the root.
    pub fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    pub fn exists(&self, absolute: &str) -> bool {
        self.path(absolute).symlink_metadata().is_ok()
    }

    pub fn read(&self, absolute: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(absolute))
    }

    fn say(&mut self, line: String) {
        let line = if self.dry_run { format!("would {line}") } else { line };
        self.report.push(line);
    }

    /// Writes a file whole (atomically) with exactly `mode`.
    pub fn write(&mut self, absolute: &str, contents: &[u8], mode: u32) -> io::Result<()> {
        self.write_with_group(absolute, contents, mode, None)
    }

    /// [`Host::write`], the file given to numeric group `group` (when some) before that group
    /// can read it.
    pub fn write_with_group(
        &mut self,
        absolute: &str,
        contents: &[u8],
        mode: u32,
        group: Option<u32>,
    ) -> io::Result<()> {
        let owner = group.map_or(String::new(), |gid| format!(", group {gid}"));
        self.say(format!("write {absolute} (mode {mode:04o}{owner})"));
        if self.dry_run {
            return Ok(());
        }
        syhub_ntp_state::atomic_file::write_with_group(&self.path(absolute), contents, mode, group)
    }

    /// The first symbolic link on the way from the root to `absolute` (the file itself
    /// included), if any: writing there could land outside the root.
    pub fn link_on_the_way(&self, absolute: &str) -> Option<PathBuf> {
        let mut path = self.root.clone();
        for part in Path::new(absolute).components().skip(1) {
            path.push(part);
            if path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                return Some(path);
            }
        }
        None
    }

    pub fn create_dir(&mut self, absolute: &str, mode: u32) -> io::Result<()> {
        self.say(format!("create directory {absolute} (mode {mode:04o})"));
        if self.dry_run {
            return Ok(());
        }
        std::fs::create_dir_all(self.path(absolute))?;
        std::fs::set_permissions(self.path(absolute), std::fs::Permissions::from_mode(mode))
    }

    /// Gives `absolute` to `user:group` by name, resolved in the root's own account files.
    pub fn chown(&mut self, absolute: &str, user: &str) -> io::Result<()> {
        self.say(format!("give {absolute} to {user}"));
        if self.dry_run {
            return Ok(());
        }
        let uid = self.id_of("/etc/passwd", user);
        let gid = self.id_of("/etc/group", user);
        let (Some(uid), Some(gid)) = (uid, gid) else {
            return Err(io::Error::other(format!(
                "no account {user} under {}",
                self.root.display()
            )));
        };
        std::os::unix::fs::chown(self.path(absolute), Some(uid), Some(gid))
    }

    /// The numeric id of `name` in an account file (passwd or group) under the root.
    pub fn id_of(&self, file: &str, name: &str) -> Option<u32> {
        syhub_ntp_state::service_account::id_in(&self.path(file), name)
    }

    pub fn remove_file(&mut self, absolute: &str) -> io::Result<()> {
        self.say(format!("remove {absolute}"));
        if self.dry_run {
            return Ok(());
        }
        match std::fs::remove_file(self.path(absolute)) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Removes a directory if it is empty; one with contents is left and said so.
    pub fn remove_dir_if_empty(&mut self, absolute: &str) -> io::Result<()> {
        let path = self.path(absolute);
        let empty = std::fs::read_dir(&path).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !empty {
            if path.exists() {
                self.report.push(format!("kept {absolute} (not empty)"));
            }
            return Ok(());
        }
        self.say(format!("remove directory {absolute}"));
        if self.dry_run {
            return Ok(());
        }
        std::fs::remove_dir(path)
    }

    /// Runs a command that changes the system; in a dry run only says it would.
    pub fn run(&mut self, program: &str, args: &[&str]) -> io::Result<()> {
        self.say(format!("run {program} {}", args.join(" ")));
        if self.dry_run {
            return Ok(());
        }
        let output = Command::new(program).args(args).output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{program} {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            )))
        }
    }

    /// `args` after `--root ROOT` when this is not the live system: how systemctl,
    /// systemd-sysusers, userdel and groupdel are pointed at a tree.
    fn rooted(&self, args: &[&str]) -> Vec<String> {
        let mut full = Vec::with_capacity(args.len() + 2);
        if !self.is_live() {
            full.push("--root".to_owned());
            full.push(self.root.to_string_lossy().into_owned());
        }
        full.extend(args.iter().map(|a| (*a).to_owned()));
        full
    }

    /// [`run`](Self::run) for a tool that takes `--root`, pointed at this host's root.
    pub fn run_rooted(&mut self, program: &str, args: &[&str]) -> io::Result<()> {
        let full = self.rooted(args);
        self.run(program, &full.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// [`query`](Self::query) for a tool that takes `--root`, pointed at this host's root.
    pub fn query_rooted(&self, program: &str, args: &[&str]) -> Option<Output> {
        let full = self.rooted(args);
        self.query(program, &full.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The Debian package that owns `absolute` in the dpkg database under this root
    /// (`dpkg-query -S`), if any. A path under `/lib` is also looked for under `/usr/lib` and the
    /// other way round, since merged-/usr systems record either.
    pub fn package_owning(&self, absolute: &str) -> Option<String> {
        let root = self.root.to_string_lossy().into_owned();
        let aliases = [
            Some(absolute.to_owned()),
            absolute.strip_prefix("/usr").filter(|p| p.starts_with("/lib/")).map(str::to_owned),
            absolute.starts_with("/lib/").then(|| format!("/usr{absolute}")),
        ];
        aliases.into_iter().flatten().find_map(|path| {
            let output = self.query("dpkg-query", &["--root", &root, "-S", &path])?;
            let text = String::from_utf8_lossy(&output.stdout);
            // Lines read `package[, package]: path`; diversions are reported on lines of their own.
            text.lines().find_map(|line| {
                let (packages, found) = line.rsplit_once(": ")?;
                (found == path && !line.starts_with("diversion "))
                    .then(|| packages.split(", ").next().unwrap_or(packages).to_owned())
            })
        })
    }

    /// Whether this process runs in a chroot: its `/` is not the `/` of PID 1. `None` when that
    /// cannot be told (no `/proc`, or no right to look).
    pub fn in_chroot(&self) -> Option<bool> {
        use std::os::unix::fs::MetadataExt;
        let ours = std::fs::metadata("/").ok()?;
        let init = std::fs::metadata("/proc/1/root/").ok()?;
        Some((ours.dev(), ours.ino()) != (init.dev(), init.ino()))
    }

    /// Runs a command that only looks (also in a dry run); `None` if it cannot run at all.
    pub fn query(&self, program: &str, args: &[&str]) -> Option<Output> {
        Command::new(program).args(args).output().ok()
    }
}
