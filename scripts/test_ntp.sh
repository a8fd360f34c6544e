#!/usr/bin/env bash
# The seed's check script, kept for people who follow its notes: `test` runs the diagnostics
# (PASS/WARN/FAIL, exit 0 only when nothing failed), `info` prints versions, paths and counters.
#   ./scripts/test_ntp.sh test|info [--json]
set -euo pipefail
# shellcheck source=scripts/syhub_binary.sh
source "$(dirname "$0")/syhub_binary.sh"
verb="${1:-}"
[ $# -gt 0 ] && shift
case "$verb" in
  test | info) exec "$syhub" "$verb" "$@" ;;
  *)
    echo "usage: $0 test|info [--json]" >&2
    exit 2
    ;;
esac
