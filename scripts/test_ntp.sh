#!/usr/bin/env bash
# The seed's check script, kept for people who follow its notes: `test` runs the diagnostics
# (PASS/WARN/FAIL, exit 0 only when nothing failed), `info` prints versions, paths and counters.
#   ./scripts/test_ntp.sh test|info [--json]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if command -v syhub-ntp >/dev/null 2>&1; then
  syhub=syhub-ntp
elif [ -x "$here/target/release/syhub-ntp" ]; then
  syhub="$here/target/release/syhub-ntp"
else
  echo "test_ntp.sh: no syhub-ntp binary: build it with 'cargo build --release' or install the package" >&2
  exit 1
fi
verb="${1:-}"
[ $# -gt 0 ] && shift
case "$verb" in
  test | info) exec "$syhub" "$verb" "$@" ;;
  *)
    echo "usage: $0 test|info [--json]" >&2
    exit 2
    ;;
esac
