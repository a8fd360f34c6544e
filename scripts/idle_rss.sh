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
. scripts/idle_server.sh
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

# Ours: the embedded default (the pool as source), idle as scripts/idle_server.sh says.
"$binary" config default >"$work/default.toml"
idle_config "$work/default.toml" "$work" >"$work/syhub.toml"
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
await_stratum10 "$ours" "$our_pid" "$work/$ours.log" >/dev/null
await_stratum10 "$theirs" "$their_pid" "$work/$theirs.log" >/dev/null
echo "== both answer ntpdig at stratum 10; idle for $idle s"
sleep "$idle"
our_kb="$(rss_kb "$our_pid")"
their_kb="$(rss_kb "$their_pid")"
echo "== idle RSS after $idle s, same run: syhub-ntp (x86-64 static musl, $(stat -c %s "$binary") bytes) $our_kb kB; chronyd -x $(chronyd -v | awk '{print $4}') $their_kb kB"
if [ "$our_kb" -gt "$their_kb" ]; then
  echo "scripts/idle_rss.sh: syhub-ntp idles at $our_kb kB, above chronyd's $their_kb kB" >&2
  exit 1
fi
