# Sourced by the scripts that measure the daemon serving while idle (idle_rss.sh, pi.sh):
#   idle_config DEFAULT_TOML WORK   the embedded default config (as `config default` prints it)
#                                   with its control socket and drift file moved into WORK, the
#                                   clock only observed, and the local clock served at stratum 10
#                                   whatever the sources say; printed on stdout
#   await_stratum10 NS PID LOG      waits (up to 30 s) until the server in namespace NS, process
#                                   PID, gives ntpdig a stratum-10 answer, and prints ntpdig's
#                                   line; on failure prints LOG and why, and returns 1
#   rss_kb PID                      VmRSS of process PID, kB
idle_config() {
  local default="$1" work="$2" config
  config="$(sed -e "s|/run/syhub-ntp/control.sock|$work/control.sock|" \
    -e "s|/var/lib/syhub-ntp/drift|$work/drift|" \
    -e 's|^mode = "steer"$|mode = "observe"|' \
    -e 's|^mode = "holdover"$|mode = "always"|' "$default")"
  for mode in observe always; do
    grep -q "^mode = \"$mode\"$" <<<"$config" || { echo "idle_config: the default config has no mode to set to $mode" >&2; return 1; }
  done
  echo "$config"
}

await_stratum10() {
  local ns="$1" pid="$2" log="$3" answer="" tries=0
  while [ -z "$answer" ]; do
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "await_stratum10: the server in $ns exited" >&2; return 1; }
    [ $tries -lt 30 ] || { cat "$log" >&2; echo "await_stratum10: no stratum-10 answer in $ns" >&2; return 1; }
    tries=$((tries + 1))
    sleep 1
    answer="$(ip netns exec "$ns" ntpdig -t 1 127.0.0.1 2>/dev/null | grep ' s10 ' || true)"
  done
  echo "$answer"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
