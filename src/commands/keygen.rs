//! `syhub-ntp keygen`: write a new symmetric keys file (readable by the service alone: 0640 group
//! syhub-ntp, or 0600 where that account does not exist) and print what clients need.

use crate::output::outln;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use syhub_ntp_proto::auth::KeyType;
use syhub_ntp_state::keygen;
use syhub_ntp_state::service_account::{under_root, write_secret};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KeyTypeArg {
    /// AES-128-CMAC (RFC 8573): the default, since RFC 8573 deprecates MD5.
    Aes128cmac,
    Sha1,
    /// Only for old clients that know nothing else.
    Md5,
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// The MAC algorithm of the new keys.
    #[arg(long = "type", value_enum, default_value = "aes128cmac")]
    kind: KeyTypeArg,
    /// How many keys, with ids 1 to N.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=65534))]
    count: u32,
    /// Where to write the keys file (a relative path is from the current directory); an existing
    /// file is kept unless --force.
    #[arg(long, default_value = "/etc/syhub-ntp/ntp.keys")]
    out: PathBuf,
    /// Replace an existing keys file.
    #[arg(long)]
    force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Say what would be written, and write nothing
    #[arg(long)]
    dry_run: bool,
    /// Write under this directory instead of / (an absolute --out is taken inside it)
    #[arg(long, default_value = "/")]
    root: PathBuf,
}

pub(crate) fn run(args: KeygenArgs) -> ExitCode {
    let kind = match args.kind {
        KeyTypeArg::Aes128cmac => KeyType::AesCmac,
        KeyTypeArg::Sha1 => KeyType::Sha1,
        KeyTypeArg::Md5 => KeyType::Md5,
    };
    let out = under_root(&args.root, &args.out);
    if args.dry_run {
        outln!(
            "would write {} {:?} key(s) to {} (readable by the service alone)",
            args.count,
            args.kind,
            out.display()
        );
        return ExitCode::SUCCESS;
    }
    // Paths as the hub will see them, without --root.
    let shown = args.out.clone();
    let args = KeygenArgs { out, ..args };
    if args.out.exists() && !args.force {
        return super::fail(format!(
            "{} exists: keeping it (its keys may be on clients already); --force replaces it",
            args.out.display()
        ));
    }
    let keys = match keygen::generate(kind, args.count) {
        Ok(keys) => keys,
        Err(error) => return super::fail(error),
    };
    let text = keygen::keys_file(&keys, "syhub-ntp keygen: keep this file private");
    let mode = match write_secret(&args.out, text.as_bytes(), &args.root) {
        Ok(mode) => mode,
        Err(error) => return super::fail(format!("cannot write {}: {error}", args.out.display())),
    };
    let readable = if mode == 0o640 { "mode 0640, group syhub-ntp" } else { "mode 0600" };
    let path = shown.display();
    let first = &keys[0];
    if args.json {
        let json = serde_json::json!({
            "file": path.to_string(),
            "mode": format!("{mode:04o}"),
            "type": kind.name(),
            "ids": keys.iter().map(|k| k.id).collect::<Vec<_>>(),
            "ntpd_line": keygen::ntpd_line(first),
            "chrony_line": keygen::chrony_line(first),
        });
        outln!("{json}");
        return ExitCode::SUCCESS;
    }
    let id = first.id;
    outln!("wrote {} {} key(s) to {path} ({readable})", keys.len(), kind.name());
    outln!();
    outln!("this hub (config.toml):");
    outln!("  [auth]\n  keys_file = \"{path}\"");
    outln!();
    outln!(
        "an ntpd or NTPsec client: put this line in its keys file (e.g. /etc/ntp.keys, mode 0600)"
    );
    outln!("  {}", keygen::ntpd_line(first));
    outln!("and in ntp.conf:");
    outln!("  keys /etc/ntp.keys\n  trustedkey {id}\n  server HUB iburst key {id}");
    outln!();
    outln!("a chrony client: put this line in /etc/chrony/chrony.keys");
    outln!("  {}", keygen::chrony_line(first));
    outln!("and in chrony.conf:");
    outln!("  keyfile /etc/chrony/chrony.keys\n  server HUB iburst key {id}");
    outln!();
    outln!(
        "another syhub-ntp: copy {path}, set [auth] keys_file, and key = {id} in its [[source]]"
    );
    ExitCode::SUCCESS
}
