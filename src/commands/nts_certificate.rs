//! `syhub-ntp nts-certificate --self-signed NAME`: a certificate and key for a hub with no public
//! name, for `[nts]`; LAN clients are then told to trust that certificate.

use crate::output::outln;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct NtsCertificateArgs {
    /// Make a self-signed certificate for NAME (the hub's DNS name or IP address as clients use it)
    #[arg(long, value_name = "NAME", required = true)]
    self_signed: String,
    /// Directory for cert.pem (0644) and key.pem (0640 group syhub-ntp, or 0600 where that
    /// account does not exist); a relative path is from the current directory
    #[arg(long, default_value = "/etc/syhub-ntp")]
    out_dir: PathBuf,
    /// Replace existing files
    #[arg(long)]
    force: bool,
    /// Say what would be written, and write nothing
    #[arg(long)]
    dry_run: bool,
    /// Write under this directory instead of / (an absolute --out-dir is taken inside it)
    #[arg(long, default_value = "/")]
    root: PathBuf,
}

pub(crate) fn run(args: NtsCertificateArgs) -> ExitCode {
    let out_dir = syhub_ntp_state::service_account::under_root(&args.root, &args.out_dir);
    let cert_path = out_dir.join("cert.pem");
    let key_path = out_dir.join("key.pem");
    if args.dry_run {
        outln!(
            "would write {} (0644) and {} (readable by the service alone) for {}",
            cert_path.display(),
            key_path.display(),
            args.self_signed
        );
        return ExitCode::SUCCESS;
    }
    if !args.force && (cert_path.exists() || key_path.exists()) {
        return super::fail(format!(
            "{} or {} exists: keeping them (clients may trust that certificate); --force replaces them",
            cert_path.display(),
            key_path.display()
        ));
    }
    let certified = match rcgen::generate_simple_self_signed(vec![args.self_signed.clone()]) {
        Ok(certified) => certified,
        Err(error) => {
            return super::fail(format!(
                "cannot make a certificate for {}: {error}",
                args.self_signed
            ));
        }
    };
    let key = certified.key_pair.serialize_pem();
    let cert = certified.cert.pem();
    // The key first: a certificate is no use without it.
    if let Err(error) =
        syhub_ntp_state::service_account::write_secret(&key_path, key.as_bytes(), &args.root)
            .and_then(|_| syhub_ntp_state::atomic_file::write(&cert_path, cert.as_bytes(), 0o644))
    {
        return super::fail(format!("cannot write to {}: {error}", out_dir.display()));
    }
    outln!("wrote {} and {}", cert_path.display(), key_path.display());
    outln!();
    outln!("this hub (config.toml):");
    outln!(
        "  [nts]\n  certificate = \"{}\"\n  private_key = \"{}\"",
        cert_path.display(),
        key_path.display()
    );
    outln!();
    outln!("a chrony client: copy {} to it, then in chrony.conf:", cert_path.display());
    outln!("  server {} iburst nts\n  ntstrustedcerts /etc/chrony/syhub-ntp.pem", args.self_signed);
    ExitCode::SUCCESS
}
