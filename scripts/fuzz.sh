#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS (default 30) each, from the committed seeds in
# fuzz/seeds/<target> into a scratch corpus, so the checkout is left as it was. Installs
# cargo-fuzz when it is missing. Builds without a sanitizer (`-s none`), which works on the
# stable toolchain; Rust's own checks (bounds, overflow with debug assertions) still trap.
# Exits non-zero on the first crash; the input that crashed is in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cargo fuzz build -s none --debug-assertions
for target in $(cargo fuzz list); do
  echo "== fuzz $target for ${seconds}s"
  mkdir -p "$scratch/$target"
  if [ "$target" = config_parse ]; then
    # The configs we ship are seeds too, read from where they live.
    cp crates/config/src/default.toml docs/examples/*.toml "$scratch/$target/"
  fi
  if [ "$target" = refclock_inputs ] && [ -r /usr/share/zoneinfo/leap-seconds.list ]; then
    # The system's leap-seconds list, behind the byte that selects the list parser.
    { printf '\001'; cat /usr/share/zoneinfo/leap-seconds.list; } >"$scratch/$target/system-leap-list"
  fi
  log="$scratch/$target.log"
  if ! cargo fuzz run -s none --debug-assertions "$target" "$scratch/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "scripts/fuzz.sh: $target failed; the input is in fuzz/artifacts/$target/"
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done [0-9]+ runs' "$log" || true
done
