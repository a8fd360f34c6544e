#!/usr/bin/env bash
# Raspberry Pi builds from this x86 machine, tested under emulation. For each Pi target it
# cross-builds with Debian's cross compilers, runs the unit, protocol and scenario tests under
# qemu-user through cargo's target runner (emulating a Pi's CPU), builds and checks the Debian
# package, runs the packaged binary, and serves a real NTP client from it in a network namespace,
# measuring its idle memory under qemu.
#
#   sudo ./scripts/pi.sh [TARGET...]
#
# Targets (default: all three):
#   aarch64-unknown-linux-gnu       Raspberry Pi OS 64-bit, Pi 3/4/5   (package arm64, cpu cortex-a53)
#   armv7-unknown-linux-gnueabihf   Raspberry Pi OS 32-bit, Pi 2/3/4   (package armhf, cpu cortex-a7)
#   arm-unknown-linux-gnueabihf     ARMv6, Pi Zero/1                   (tests only, cpu arm1176)
# A target whose Rust standard library cannot be fetched here is skipped with the reason; the
# others still run. The packages link glibc dynamically and need glibc 2.34 or newer (Raspberry Pi
# OS bookworm, Debian 12): a static musl build for ARM would need a musl C cross compiler for
# ring, which Debian does not ship.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/pi.sh: run as root: it installs cross compilers and qemu, and serves in a network namespace" >&2
  exit 1
fi

[ $# -gt 0 ] || set -- aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf arm-unknown-linux-gnueabihf

need_packages qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf \
  libc6-dev-armhf-cross iproute2 util-linux ntpsec-ntpdig

# What each target needs: Debian architecture (or - for no package), cross compiler prefix, qemu,
# and the CPU qemu emulates (the oldest Pi the target is for, so newer instructions fault).
describe() {
  case "$1" in
    aarch64-unknown-linux-gnu) echo "arm64 aarch64-linux-gnu qemu-aarch64-static cortex-a53" ;;
    armv7-unknown-linux-gnueabihf) echo "armhf arm-linux-gnueabihf qemu-arm-static cortex-a7" ;;
    arm-unknown-linux-gnueabihf) echo "- arm-linux-gnueabihf qemu-arm-static arm1176" ;;
    *) echo "scripts/pi.sh: unknown target $1" >&2; return 1 ;;
  esac
}

work="$(mktemp -d)"
namespace=""
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  if [ -n "$namespace" ]; then ip netns del "$namespace" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# VmRSS of process $1 in kB.
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

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
# running a C program that only waits gives qemu's own share. Writes "daemon_kB baseline_kB" to
# $work/rss (not run in a subshell, so the exit trap can stop what it started).
serve_and_measure() {
  local binary="$1" prefix="$2" qemu="$3" cpu="$4"
  namespace="syhub-pi-$$"
  ip netns add "$namespace"
  ip netns exec "$namespace" ip link set lo up
  QEMU_CPU="$cpu" "$qemu" -L "/usr/$prefix" "$binary" config default >"$work/default.toml"
  local config="$work/config.toml"
  sed -e "s|/run/syhub-ntp/control.sock|$work/control.sock|" \
    -e "s|/var/lib/syhub-ntp/drift|$work/drift|" \
    -e 's|^mode = "steer"$|mode = "observe"|' \
    -e 's|^mode = "holdover"$|mode = "always"|' "$work/default.toml" >"$config"
  grep -q '^mode = "observe"$' "$config" || { echo "scripts/pi.sh: the default config has no clock mode to set to observe" >&2; return 1; }
  start_in_namespace env QEMU_CPU="$cpu" "$qemu" -L "/usr/$prefix" "$binary" run -c "$config"
  local answer="" tries=0
  while [ -z "$answer" ] && [ $tries -lt 30 ]; do
    sleep 1
    tries=$((tries + 1))
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.log" >&2; echo "scripts/pi.sh: the daemon under $qemu exited" >&2; return 1; }
    answer="$(ip netns exec "$namespace" ntpdig -t 1 127.0.0.1 2>/dev/null | grep ' s10 ' || true)"
  done
  [ -n "$answer" ] || { cat "$work/daemon.log" >&2; echo "scripts/pi.sh: no stratum-10 answer from the daemon under $qemu" >&2; return 1; }
  echo "   ntpdig in the namespace: $answer"
  sleep 10
  local daemon_kb
  daemon_kb="$(rss_kb "$daemon_pid")"
  stop_daemon

  printf '#include <unistd.h>\nint main(void) { pause(); return 0; }\n' >"$work/wait.c"
  "$prefix-gcc" -O2 -o "$work/wait" "$work/wait.c"
  start_in_namespace env QEMU_CPU="$cpu" "$qemu" -L "/usr/$prefix" "$work/wait"
  sleep 3
  local baseline_kb
  baseline_kb="$(rss_kb "$daemon_pid")"
  stop_daemon
  ip netns del "$namespace"
  namespace=""
  echo "$daemon_kb $baseline_kb" >"$work/rss"
}

summary=()
for target in "$@"; do
  read -r arch prefix qemu cpu <<<"$(describe "$target")"
  upper="$(echo "$target" | tr 'a-z-' 'A-Z_')"
  echo "== $target"
  if ! rustup target list --installed | grep -qx "$target"; then
    if ! rustup target add "$target" >"$work/rustup.log" 2>&1; then
      reason="$(grep -m1 -E '^error' "$work/rustup.log" || tail -n 1 "$work/rustup.log")"
      echo "scripts/pi.sh: $target NOT BUILT: the Rust standard library for it cannot be fetched here ($reason)"
      summary+=("$target: not built, no Rust standard library here")
      continue
    fi
  fi
  export "CARGO_TARGET_${upper}_LINKER=$prefix-gcc"
  export "CARGO_TARGET_${upper}_RUNNER=$qemu -L /usr/$prefix"

  echo "== $target: unit, protocol and scenario tests under $qemu (QEMU_CPU=$cpu)"
  QEMU_CPU="$cpu" cargo test --locked --target "$target" --workspace --lib --bins --test scenarios

  if [ "$arch" = "-" ]; then
    summary+=("$target: tests passed under $qemu ($cpu); no package")
    continue
  fi
  echo "== $target: Debian package ($arch)"
  ./scripts/package.sh --target "$target"
  deb="$(ls -t "target/$target/debian/"*_"$arch".deb | head -n 1)"
  [ "$(dpkg-deb --field "$deb" Architecture)" = "$arch" ] || { echo "scripts/pi.sh: $deb is not $arch" >&2; exit 1; }
  dpkg-deb --info "$deb" | grep -E '^ (Package|Version|Architecture|Depends):'
  dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/bin/syhub-ntp >"$work/syhub-ntp"
  chmod 755 "$work/syhub-ntp"
  version="$(QEMU_CPU="$cpu" "$qemu" -L "/usr/$prefix" "$work/syhub-ntp" --version)"
  echo "   packaged binary under $qemu: $version"
  grep -q '^syhub-ntp ' <<<"$version" || { echo "scripts/pi.sh: the packaged binary printed '$version'" >&2; exit 1; }
  size="$(stat -c %s "$work/syhub-ntp")"

  echo "== $target: serving a real client from the packaged binary under $qemu, then idle"
  serve_and_measure "$work/syhub-ntp" "$prefix" "$qemu" "$cpu"
  read -r daemon_kb baseline_kb <"$work/rss"
  summary+=("$target: tests passed under $qemu ($cpu); $(basename "$deb") $(stat -c %s "$deb") bytes; binary $size bytes; idle RSS under qemu ${daemon_kb} kB (qemu running a program that only waits: ${baseline_kb} kB)")
done

echo "== Raspberry Pi summary"
printf '   %s\n' "${summary[@]}"
