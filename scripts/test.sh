#!/usr/bin/env bash
# The whole test suite, runnable on a fresh Debian 12 machine as root: installs the real programs
# the tests talk to (NTP clients and servers, Mosquitto, Chromium, curl, faketime; without starting their
# services), then checks formatting, the crate graph and
# lints and runs every unit, property and integration test. Integration tests create network
# namespaces and run every daemon under `setpriv --bounding-set -sys_time`, so nothing here can
# change the system clock.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: run as root: the tests create network namespaces (ip netns) and bind port 123 inside them" >&2
  exit 1
fi

# Debian packages the tests need: real clients and servers, the namespace tools, musl-tools for
# the static package build, and a C++
# compiler for libFuzzer.
packages=(chrony ntpsec-ntpdig ntpsec-ntpdate iproute2 util-linux mosquitto mosquitto-clients chromium curl openssl tshark nftables iptables ufw systemd passwd g++ musl-tools gpsd python3 faketime dnsmasq-base debootstrap lintian man-db)
need_packages "${packages[@]}"

# Toolchain components for the checks.
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== crate edges as drawn, no unused dependencies (scripts/check_crates.py)"
python3 scripts/check_crates.py
echo "== cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (unit, property and integration tests)"
cargo test --workspace --locked
echo "== man pages generated from the CLI and the default config (scripts/test_man_pages.sh)"
./scripts/test_man_pages.sh target/debug/syhub-ntp
echo "== Debian package and lintian (installs cargo-deb when missing)"
./scripts/package.sh
echo "== the package in a bookworm chroot: first configure, upgrade, remove, purge (scripts/package_chroot.sh)"
./scripts/package_chroot.sh "$(ls -t target/x86_64-unknown-linux-musl/debian/*.deb | head -n 1)"
echo "== idle memory of the static build beside chronyd's (scripts/idle_rss.sh)"
./scripts/idle_rss.sh
echo "== Raspberry Pi: arm64 and armhf static builds, tests under qemu, packages (scripts/pi.sh)"
./scripts/pi.sh
echo "== fuzz each target for 30 s (installs cargo-fuzz when missing)"
./scripts/fuzz.sh 30
echo "== all tests passed"
