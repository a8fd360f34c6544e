#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed when missing) and checks that it holds the
# binary, the units, the sysusers entry, the default config, the docs and the man pages (generated
# here from the CLI and the commented default config), that it takes the place of other time
# daemons, and that lintian finds no error and no warning (the accepted ones are overridden in
# packaging/debian/lintian-overrides, each with its reason). Without arguments it packages the
# static musl build for this machine (scripts/static_build.sh); for a Raspberry Pi, build with
# scripts/pi_cargo.sh first and pass --target TRIPLE --no-build (see README, "Raspberry Pi").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
. scripts/static_build.sh

if ! cargo deb --version >/dev/null 2>&1; then
  echo "scripts/package.sh: installing cargo-deb"
  cargo install cargo-deb --locked
fi

need_packages lintian man-db
# The man pages, from this machine's own build (the pages are the same for every architecture).
host_binary="$(build_static_binary)"
rm -rf target/man
python3 scripts/man_pages.py --binary "$host_binary" --config crates/config/src/default.toml \
  --out target/man --gzip-only
if [ $# -eq 0 ]; then
  set -- --target "$(static_target)"
fi
cargo deb --locked "$@"
target_dir="${CARGO_TARGET_DIR:-target}"
deb="$(ls -t "$target_dir"/debian/*.deb "$target_dir"/*/debian/*.deb 2>/dev/null | head -n 1 || true)"
[ -n "$deb" ] || { echo "scripts/package.sh: cargo deb made no package" >&2; exit 1; }
echo "== $deb"
contents="$(dpkg-deb --contents "$deb")"
missing=0
for path in ./usr/bin/syhub-ntp ./lib/systemd/system/syhub-ntp.service \
  ./lib/systemd/system/syhub-ntp-wait-sync.service ./usr/lib/sysusers.d/syhub-ntp.conf \
  ./usr/share/doc/syhub-ntp/examples/config.toml ./usr/share/doc/syhub-ntp/README.md \
  ./usr/share/doc/syhub-ntp/architecture.md ./usr/share/man/man8/syhub-ntp.8.gz \
  ./usr/share/man/man5/syhub-ntp.toml.5.gz ./usr/share/doc/syhub-ntp/changelog.Debian.gz; do
  if ! grep -q " $path\$" <<<"$contents"; then
    echo "scripts/package.sh: $deb lacks $path"
    missing=1
  fi
done
info="$(dpkg-deb --info "$deb")"
for field in "Provides: time-daemon" "Conflicts: time-daemon" "postinst" "prerm" "postrm"; do
  if ! grep -q "$field" <<<"$info"; then
    echo "scripts/package.sh: $deb lacks $field"
    missing=1
  fi
done
[ "$missing" -eq 0 ]
echo "== lintian $deb"
lintian_rc=0
lintian_output="$(lintian --fail-on error,warning --display-info "$deb" 2>&1)" || lintian_rc=$?
grep -v "^running with root privileges" <<<"$lintian_output" || echo "   (nothing to report)"
if [ "$lintian_rc" -ne 0 ]; then
  echo "scripts/package.sh: lintian failed on $deb (exit $lintian_rc)" >&2
  exit 1
fi
dpkg-deb --field "$deb" Package Version Architecture Installed-Size Depends
binary_size="$(dpkg-deb --fsys-tarfile "$deb" | tar -tvf - ./usr/bin/syhub-ntp | awk '{print $3}')"
echo "== /usr/bin/syhub-ntp: $binary_size bytes"
if [ "$binary_size" -gt 4000000 ]; then
  echo "scripts/package.sh: the daemon is over 4 MB ($binary_size bytes)" >&2
  exit 1
fi
echo "== package OK: $deb ($(stat -c %s "$deb") bytes)"
