#!/usr/bin/env bash
# Idle memory of the daemon as the x86-64 package ships it (the static musl build,
# scripts/static_build.sh) beside chronyd's, measured in one run on this machine. Each runs in a
# network namespace of its own (loopback only) under `setpriv --bounding-set -sys_time`, chronyd
# with -x, so neither can touch the clock. Both get the same kind of idle config: the NTP pool as
# their source (unreachable from the namespace) and the local clock served at stratum 10 to
# anyone. Each must answer ntpdig; then both idle together and their VmRSS is read. Fails when
# ours is above chronyd's.
#
#   sudo ./scripts/idle_rss.sh [SECONDS]     (idle time, default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/idle_rss.sh: run as root: it creates network namespaces and binds port 123 in them" >&2
  exit 1
fi
idle="${1:-30}"
[[ "$idle" =~ ^[0-9]+$ ]] || { echo "scripts/idle_rss.sh: SECONDS must be a whole number, not '$idle'" >&2; exit 2; }

need_packages chrony iproute2 util-linux ntpsec-ntpdig musl-tools
. scripts/static_build.sh
binary="$(build_static_binary)"

work="$(mktemp -d)"
pids=()
namespaces=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Starts "$@" in a new namespace $1 without CAP_SYS_TIME, logging to $work/$1.log.
start() {
  local ns="$1"
  shift
  ip netns add "$ns"
  namespaces+=("$ns")
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" setpriv --bounding-set -sys_time -- "$@" >"$work/$ns.log" 2>&1 &
  pids+=($!)
}

# Waits until the server in namespace $1 (process $2) gives ntpdig a stratum-10 answer.
wait_for_answer() {
  local ns="$1" pid="$2" tries=0
  while ! ip netns exec "$ns" ntpdig -t 1 127.0.0.1 2>/dev/null | grep -q ' s10 '; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/$ns.log" >&2; echo "scripts/idle_rss.sh: the server in $ns exited" >&2; exit 1; }
    tries=$((tries + 1))
    [ $tries -lt 30 ] || { cat "$work/$ns.log" >&2; echo "scripts/idle_rss.sh: no stratum-10 answer in $ns" >&2; exit 1; }
    sleep 1
  done
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Ours: the embedded default (the pool as source) with its paths moved here, the clock only
# observed, and the local clock served at stratum 10 whatever the sources say.
"$binary" config default >"$work/default.toml"
sed -e "s|/run/syhub-ntp/control.sock|$work/control.sock|" \
  -e "s|/var/lib/syhub-ntp/drift|$work/drift|" \
  -e 's|^mode = "steer"$|mode = "observe"|' \
  -e 's|^mode = "holdover"$|mode = "always"|' "$work/default.toml" >"$work/syhub.toml"
grep -q '^mode = "always"$' "$work/syhub.toml" || { echo "scripts/idle_rss.sh: the default config has no local mode to set to always" >&2; exit 1; }
# chronyd: the same pool, local stratum 10, answering anyone; no command socket.
cat >"$work/chrony.conf" <<EOF
pool pool.ntp.org iburst maxsources 4
local stratum 10
allow all
cmdport 0
bindcmdaddress /
driftfile $work/chrony.drift
pidfile $work/chronyd.pid
EOF

ours="syhub-idle-$$"
theirs="chrony-idle-$$"
start "$ours" "$binary" run -c "$work/syhub.toml"
our_pid="${pids[-1]}"
start "$theirs" chronyd -x -d -u root -f "$work/chrony.conf"
their_pid="${pids[-1]}"
wait_for_answer "$ours" "$our_pid"
wait_for_answer "$theirs" "$their_pid"
echo "== both answer ntpdig at stratum 10; idle for $idle s"
sleep "$idle"
our_kb="$(rss_kb "$our_pid")"
their_kb="$(rss_kb "$their_pid")"
echo "== idle RSS after $idle s, same run: syhub-ntp (x86-64 static musl, $(stat -c %s "$binary") bytes) $our_kb kB; chronyd -x $(chronyd -v | awk '{print $4}') $their_kb kB"
if [ "$our_kb" -gt "$their_kb" ]; then
  echo "scripts/idle_rss.sh: syhub-ntp idles at $our_kb kB, above chronyd's $their_kb kB" >&2
  exit 1
fi
