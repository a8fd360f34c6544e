#!/usr/bin/env bash
# The seed's setup script, kept for people who follow its notes: each verb runs the syhub-ntp
# command that replaces it. Extra arguments (--dry-run, --root DIR, --keep-others, --purge, --json)
# are passed on.
#   sudo ./scripts/setup_ntp.sh install|status|test|uninstall [ARGS...]
set -euo pipefail
# shellcheck source=scripts/syhub_binary.sh
source "$(dirname "$0")/syhub_binary.sh"
verb="${1:-}"
[ $# -gt 0 ] && shift
case "$verb" in
  install | uninstall | status | test) exec "$syhub" "$verb" "$@" ;;
  *)
    echo "usage: $0 install|status|test|uninstall [ARGS...]" >&2
    exit 2
    ;;
esac
