# Sourced by the seed's wrapper scripts: sets $syhub to the syhub-ntp on PATH, else this
# checkout's release build, or says how to get one and exits.
syhub_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if command -v syhub-ntp >/dev/null 2>&1; then
  syhub=syhub-ntp
elif [ -x "$syhub_root/target/release/syhub-ntp" ]; then
  syhub="$syhub_root/target/release/syhub-ntp"
else
  echo "$(basename "$0"): no syhub-ntp binary: build it with 'cargo build --release' or install the package" >&2
  exit 1
fi
