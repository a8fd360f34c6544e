#!/usr/bin/env bash
# Raspberry Pi builds from this x86 machine, tested under emulation: one static musl binary for
# each Debian architecture a Pi runs. For each target it cross-builds with scripts/pi_cargo.sh
# (Zig as the C cross compiler and linker; the ARMv6 standard library built from source where
# rustup has none), runs the unit, protocol and scenario tests under qemu-user through cargo's
# target runner (emulating the oldest Pi CPU the package is for), builds and checks the Debian
# package, checks the packaged binary is static and built for that CPU (file, readelf -A), runs
# it, and serves a real NTP client from it in a network namespace, measuring its idle memory
# under qemu beside qemu's own.
#
#   sudo ./scripts/pi.sh [TARGET...]
#
# Targets (default: both):
#   aarch64-unknown-linux-musl     64-bit Raspberry Pi OS: Pi 3/4/5, Zero 2 W   (package arm64, cpu cortex-a53)
#   arm-unknown-linux-musleabihf   32-bit Raspberry Pi OS: every Pi, Pi 1/Zero  (package armhf, cpu arm1176)
# The packages depend on no C library: they install on any Raspberry Pi OS or Debian release.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
. scripts/idle_server.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/pi.sh: run as root: it installs qemu and Zig, and serves in a network namespace" >&2
  exit 1
fi

[ $# -gt 0 ] || set -- aarch64-unknown-linux-musl arm-unknown-linux-musleabihf

need_packages qemu-user-static iproute2 util-linux ntpsec-ntpdig file binutils python3-pip

# What each target needs: Debian architecture, qemu, the CPU qemu emulates (the oldest Pi the
# package is for, so newer instructions fault), and what readelf must find in the binary.
describe() {
  case "$1" in
    aarch64-unknown-linux-musl) echo "arm64 qemu-aarch64-static cortex-a53" ;;
    arm-unknown-linux-musleabihf) echo "armhf qemu-arm-static arm1176" ;;
    *) echo "scripts/pi.sh: unknown target $1 (aarch64-unknown-linux-musl or arm-unknown-linux-musleabihf)" >&2; return 1 ;;
  esac
}

target_dir="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d)"
namespace=""
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  if [ -n "$namespace" ]; then ip netns del "$namespace" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Runs "$@" (a qemu command line) in the namespace without CAP_SYS_TIME, in the background.
start_in_namespace() {
  ip netns exec "$namespace" setpriv --bounding-set -sys_time -- "$@" >"$work/daemon.log" 2>&1 &
  daemon_pid=$!
}

stop_daemon() {
  kill "$daemon_pid" 2>/dev/null || true
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
}

# Serves from the packaged binary under qemu in a fresh namespace: a real client (ntpdig) must get
# a stratum-10 answer on port 123; then the daemon idles 10 s and its RSS is read. The same qemu
# running a static C program that only waits (built by the same Zig) gives qemu's own share.
# Writes "daemon_kB baseline_kB" to $work/rss (not run in a subshell, so the exit trap can stop
# what it started).
serve_and_measure() {
  local binary="$1" target="$2" qemu="$3" cpu="$4"
  namespace="syhub-pi-$$"
  ip netns add "$namespace"
  ip netns exec "$namespace" ip link set lo up
  QEMU_CPU="$cpu" "$qemu" "$binary" config default >"$work/default.toml"
  local config="$work/config.toml"
  idle_config "$work/default.toml" "$work" >"$config"
  start_in_namespace env QEMU_CPU="$cpu" "$qemu" "$binary" run -c "$config"
  local answer
  answer="$(await_stratum10 "$namespace" "$daemon_pid" "$work/daemon.log")"
  echo "   ntpdig in the namespace: $answer"
  sleep 10
  local daemon_kb
  daemon_kb="$(rss_kb "$daemon_pid")"
  stop_daemon

  printf '#include <unistd.h>\nint main(void) { pause(); return 0; }\n' >"$work/wait.c"
  "$target_dir/zig/bin/$target-cc" -O2 -static -o "$work/wait" "$work/wait.c"
  start_in_namespace env QEMU_CPU="$cpu" "$qemu" "$work/wait"
  sleep 3
  local baseline_kb
  baseline_kb="$(rss_kb "$daemon_pid")"
  stop_daemon
  ip netns del "$namespace"
  namespace=""
  echo "$daemon_kb $baseline_kb" >"$work/rss"
}

# The packaged binary must be static (no C library on the Pi) and built for the package's oldest
# CPU: ARMv6 with VFPv2 for armhf (readelf -A: the ARM build attributes), AArch64 for arm64.
# Prints "file: ..." and "readelf: ..." lines for the summary.
check_binary() {
  local binary="$1" arch="$2"
  local kind
  kind="$(file -b "$binary")"
  echo "   file: $kind"
  grep -qE 'statically linked|static-pie linked' <<<"$kind" || { echo "scripts/pi.sh: $binary is not a static binary" >&2; return 1; }
  case "$arch" in
    armhf)
      grep -q ', ARM, EABI5' <<<"$kind" || { echo "scripts/pi.sh: $binary is not 32-bit ARM EABI5" >&2; return 1; }
      local attributes
      attributes="$(readelf -A "$binary")"
      grep -E 'Tag_CPU_(name|arch):|Tag_FP_arch:|Tag_ABI_VFP_args:' <<<"$attributes" | sed 's/^ */   readelf -A: /'
      grep -qE '^ *Tag_CPU_arch: v6' <<<"$attributes" || { echo "scripts/pi.sh: $binary is not ARMv6 code (readelf -A: $(grep Tag_CPU_arch: <<<"$attributes"))" >&2; return 1; }
      grep -qE '^ *Tag_ABI_VFP_args: VFP registers' <<<"$attributes" || { echo "scripts/pi.sh: $binary does not pass floats in VFP registers (armhf)" >&2; return 1; }
      ;;
    arm64)
      grep -q ', ARM aarch64' <<<"$kind" || { echo "scripts/pi.sh: $binary is not AArch64" >&2; return 1; }
      readelf -h "$binary" | grep -E '^ *Machine:' | sed 's/^ */   readelf -h: /'
      readelf -A "$binary" | grep -vE '^$' | sed 's/^ */   readelf -A: /' || true
      ;;
  esac
}

summary=()
for target in "$@"; do
  read -r arch qemu cpu <<<"$(describe "$target")"
  upper="$(echo "$target" | tr 'a-z-' 'A-Z_')"
  echo "== $target"
  # Static binaries: qemu needs no guest C library (-L).
  export "CARGO_TARGET_${upper}_RUNNER=$qemu"

  echo "== $target: unit, protocol and scenario tests under $qemu (QEMU_CPU=$cpu)"
  # One test is left to the native run: qemu-user passes a 12-byte ip_mreqn (the interface chosen
  # by index) to the host kernel without its index (its own struct declares the index as a
  # target long, 8 bytes on arm64), so joining a group on a named interface fails only under the
  # emulator. The join is the kernel's on a real Pi; the test's logic is the same on every target.
  QEMU_CPU="$cpu" ./scripts/pi_cargo.sh "$target" test --locked --workspace --lib --bins --test scenarios \
    -- --skip multicast::tests::joins_follow_the_interfaces_and_the_senders_see_each_change

  echo "== $target: release build and Debian package ($arch)"
  ./scripts/pi_cargo.sh "$target" build --release --locked -p syhub-ntp
  ./scripts/package.sh --target "$target" --no-build
  deb="$(ls -t "$target_dir/$target/debian/"*_"$arch".deb | head -n 1)"
  [ "$(dpkg-deb --field "$deb" Architecture)" = "$arch" ] || { echo "scripts/pi.sh: $deb is not $arch" >&2; exit 1; }
  dpkg-deb --info "$deb" | grep -E '^ (Package|Version|Architecture|Depends):'
  if dpkg-deb --field "$deb" Depends | grep -q libc; then
    echo "scripts/pi.sh: $deb depends on a C library: $(dpkg-deb --field "$deb" Depends)" >&2
    exit 1
  fi
  dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/bin/syhub-ntp >"$work/syhub-ntp"
  chmod 755 "$work/syhub-ntp"
  check_binary "$work/syhub-ntp" "$arch" | tee "$work/check"
  version="$(QEMU_CPU="$cpu" "$qemu" "$work/syhub-ntp" --version)"
  echo "   packaged binary under $qemu (QEMU_CPU=$cpu): $version"
  grep -q '^syhub-ntp ' <<<"$version" || { echo "scripts/pi.sh: the packaged binary printed '$version'" >&2; exit 1; }
  size="$(stat -c %s "$work/syhub-ntp")"

  echo "== $target: serving a real client from the packaged binary under $qemu, then idle"
  serve_and_measure "$work/syhub-ntp" "$target" "$qemu" "$cpu"
  read -r daemon_kb baseline_kb <"$work/rss"
  summary+=("$target: tests passed under $qemu (QEMU_CPU=$cpu); $(basename "$deb") $(stat -c %s "$deb") bytes; binary $size bytes; idle RSS under qemu ${daemon_kb} kB (qemu running a program that only waits: ${baseline_kb} kB)")
  while read -r line; do summary+=("  $line"); done <"$work/check"
done

echo "== Raspberry Pi summary"
printf '   %s\n' "${summary[@]}"
