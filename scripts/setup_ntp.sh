#!/usr/bin/env bash
# The seed's setup script, kept for people who follow its notes: each verb runs the syhub-ntp
# command that replaces it. Extra arguments (--dry-run, --root DIR, --keep-others, --purge, --json)
# are passed on.
#   sudo ./scripts/setup_ntp.sh install|status|test|uninstall [ARGS...]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if command -v syhub-ntp >/dev/null 2>&1; then
  syhub=syhub-ntp
elif [ -x "$here/target/release/syhub-ntp" ]; then
  syhub="$here/target/release/syhub-ntp"
else
  echo "setup_ntp.sh: no syhub-ntp binary: build it with 'cargo build --release' or install the package" >&2
  exit 1
fi
verb="${1:-}"
[ $# -gt 0 ] && shift
case "$verb" in
  install | uninstall | status | test) exec "$syhub" "$verb" "$@" ;;
  *)
    echo "usage: $0 install|status|test|uninstall [ARGS...]" >&2
    exit 2
    ;;
esac
