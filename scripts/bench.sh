#!/usr/bin/env bash
# The side-by-side server benchmark (issue 9): syhub-ntp, chronyd, NTPsec, ntpd-rs and a UDP echo,
# each in a network namespace of its own under `setpriv --bounding-set -sys_time`, served the same
# load on loopback by our load generator; prints one Markdown table.
#
#   sudo ./scripts/bench.sh [--idle SECONDS] [--step SECONDS] [--fixed-rate N]
#
# Installs chrony from Debian; unpacks NTPsec's package (it conflicts with chrony) and builds ntpd-rs
# (the `ntpd` crate) into a cache folder, once. Nothing here touches the system clock.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh
need_packages chrony iproute2 util-linux musl-tools

cache="${XDG_CACHE_HOME:-$HOME/.cache}/syhub-ntp-bench"
mkdir -p "$cache/ntpsec"
if [ ! -x "$cache/ntpsec/root/usr/sbin/ntpd" ]; then
    echo "unpacking NTPsec into $cache/ntpsec" >&2
    (cd "$cache/ntpsec" && apt-get download ntpsec && dpkg -x ntpsec_*.deb root)
fi
ntpd_rs_version=1.9.0
if [ ! -x "$cache/ntpd-rs/bin/ntp-daemon" ]; then
    echo "building ntpd-rs $ntpd_rs_version into $cache/ntpd-rs (several minutes, once)" >&2
    cargo install ntpd --version "$ntpd_rs_version" --locked --root "$cache/ntpd-rs" \
        --target-dir "$cache/ntpd-rs-build"
fi

# The daemon as shipped: a static musl build (scripts/package.sh); the tools as usual.
. scripts/static_build.sh
static_binary=$(build_static_binary)
cargo build --release --bins -p syhub-ntp-bench
echo "$(date -u +%Y-%m-%d) on $(nproc) cores of $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)" >&2
exec target/release/syhub-ntp-bench \
    --syhub "$static_binary" \
    --chronyd "$(command -v chronyd)" \
    --ntpsec "$cache/ntpsec/root/usr/sbin/ntpd" \
    --ntpd-rs "$cache/ntpd-rs/bin/ntp-daemon" \
    "$@"
