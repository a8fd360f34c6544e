//! `syhub-ntp backup [FILE]` and `syhub-ntp restore FILE`.

use crate::output::outln;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use syhub_ntp_config::DEFAULT_CONFIG_PATH;
use syhub_ntp_ops::Host;
use syhub_ntp_ops::backup::{BackupManifest, backup, restore};

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// Archive to write [default: syhub-ntp-backup-<unix time>.tar.gz here]
    file: Option<PathBuf>,
    /// The config to back up (with its keys and drift file), under --root
    #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
    config: String,
    /// The system's root directory
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// Archive written by `syhub-ntp backup`
    file: PathBuf,
    /// The system's root directory
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Check the archive and say what would be replaced, changing nothing
    #[arg(long)]
    dry_run: bool,
    /// Print the result as JSON
    #[arg(long)]
    json: bool,
}

fn report(manifest: &BackupManifest, verb: &str, archive: &std::path::Path, json: bool) {
    if json {
        let value = serde_json::json!({ "ok": true, "archive": archive.display().to_string(), "manifest": manifest });
        outln!("{value}");
    } else {
        for file in &manifest.files {
            outln!("{verb} {} ({:04o}, sha256 {})", file.path, file.mode, &file.sha256[..16]);
        }
        outln!("archive {}", archive.display());
    }
}

fn fail(error: String, json: bool) -> ExitCode {
    if json {
        outln!("{}", serde_json::json!({ "ok": false, "error": error }));
        ExitCode::from(super::EXIT_FAILURE)
    } else {
        super::fail(error)
    }
}

pub(crate) fn run_backup(args: BackupArgs) -> ExitCode {
    let host = Host::new(&args.root, false);
    let file = args.file.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("syhub-ntp-backup-{now}.tar.gz"))
    });
    match backup(&host, &args.config, &file) {
        Ok(manifest) => {
            report(&manifest, "saved", &file, args.json);
            ExitCode::SUCCESS
        }
        Err(error) => fail(error, args.json),
    }
}

pub(crate) fn run_restore(args: RestoreArgs) -> ExitCode {
    let mut host = Host::new(&args.root, args.dry_run);
    match restore(&mut host, &args.file) {
        Ok(manifest) => {
            if !args.json {
                for line in &host.report {
                    outln!("{line}");
                }
            }
            report(
                &manifest,
                if args.dry_run { "would restore" } else { "restored" },
                &args.file,
                args.json,
            );
            ExitCode::SUCCESS
        }
        Err(error) => fail(error, args.json),
    }
}
