#!/usr/bin/env bash
# cargo for a Raspberry Pi target: a static musl build, with Zig as the C cross compiler (ring's C
# and assembly code) and as the linker, since Debian has no musl cross compiler. Zig comes from
# PyPI (the ziglang wheel, a pinned version) and is installed into the cargo target folder when
# missing, with its cache beside it. Where rustup cannot download the target's standard library
# (here the 32-bit ARM musl targets), it is built from source (`rustup component add rust-src`,
# `-Zbuild-std`); that flag is unstable, so RUSTC_BOOTSTRAP=1 is set for this one cargo run only
# (the rest of the workspace stays on stable cargo).
#
#   ./scripts/pi_cargo.sh TARGET CARGO_COMMAND [ARGS...]
#   e.g. ./scripts/pi_cargo.sh arm-unknown-linux-musleabihf build --release --locked -p syhub-ntp
#
# Targets:
#   aarch64-unknown-linux-musl     64-bit Raspberry Pi OS: Pi 3, 4, 5, Zero 2 W  (Debian arm64)
#   arm-unknown-linux-musleabihf   ARMv6 with VFPv2: every 32-bit Pi OS, Pi 1 and Zero to Pi 5  (armhf)
# The binaries need no C library on the Pi. To run tests, set CARGO_TARGET_<TARGET>_RUNNER to
# qemu-user (scripts/pi.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."

zig_version=0.17.1

if [ $# -lt 2 ]; then
  echo "usage: scripts/pi_cargo.sh TARGET CARGO_COMMAND [ARGS...] (TARGET: aarch64-unknown-linux-musl or arm-unknown-linux-musleabihf)" >&2
  exit 2
fi
target="$1"
shift

# Zig's name for the target and the CPU its C code is built for: the oldest Pi the package is
# for (the ARM1176JZF-S of the Pi 1 and Zero; for 64-bit, Zig's baseline ARMv8-A, which every
# 64-bit Pi has: the Pi 3's and 4's cores lack the crypto extensions a "cortex-a53" build assumes).
case "$target" in
  aarch64-unknown-linux-musl) zig_target=aarch64-linux-musl zig_cpu=baseline ;;
  arm-unknown-linux-musleabihf) zig_target=arm-linux-musleabihf zig_cpu=arm1176jzf_s ;;
  *)
    echo "scripts/pi_cargo.sh: unknown target $target (aarch64-unknown-linux-musl or arm-unknown-linux-musleabihf)" >&2
    exit 2
    ;;
esac

target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
zig_root="$(cd "$target_dir" && pwd)/zig"
zig="$zig_root/ziglang-$zig_version/ziglang/zig"
if [ ! -x "$zig" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
      . scripts/packages.sh
      need_packages python3-pip >&2
    else
      echo "scripts/pi_cargo.sh: Zig is installed with pip: install python3-pip (apt install python3-pip) or run as root" >&2
      exit 1
    fi
  fi
  echo "scripts/pi_cargo.sh: installing Zig $zig_version (PyPI: ziglang) into $zig_root" >&2
  # --target installs into a folder of its own: nothing in the system Python changes.
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-warn-script-location \
    --target "$zig_root/ziglang-$zig_version" "ziglang==$zig_version" >&2
  [ -x "$zig" ] || { echo "scripts/pi_cargo.sh: pip installed ziglang but $zig is not there" >&2; exit 1; }
fi

# The compiler and linker cargo, cc-rs and rustc call: zig cc for this target and CPU. cc-rs
# adds a clang --target and an -march of its own, which Zig's driver does not take: dropped here,
# since -target and -mcpu say the same.
bin="$zig_root/bin"
mkdir -p "$bin"
cc="$bin/$target-cc"
cat >"$cc.new" <<EOF
#!/usr/bin/env bash
# Written by scripts/pi_cargo.sh: zig cc for $target.
args=()
for arg in "\$@"; do
  case "\$arg" in
    --target=* | -march=*) ;;
    *) args+=("\$arg") ;;
  esac
done
export ZIG_GLOBAL_CACHE_DIR="$zig_root/cache" ZIG_LOCAL_CACHE_DIR="$zig_root/cache"
exec "$zig" cc -target $zig_target -mcpu=$zig_cpu "\${args[@]}"
EOF
chmod 755 "$cc.new"
mv "$cc.new" "$cc"
ar="$bin/ar"
printf '#!/bin/sh\n# Written by scripts/pi_cargo.sh: zig ar.\nexec "%s" ar "$@"\n' "$zig" >"$ar.new"
chmod 755 "$ar.new"
mv "$ar.new" "$ar"

upper="$(echo "$target" | tr 'a-z-' 'A-Z_')"
lower="$(echo "$target" | tr '-' '_')"
export "CC_$lower=$cc" "AR_$lower=$ar" "CARGO_TARGET_${upper}_LINKER=$cc"
# Zig links its own musl C library, start files and libunwind; the copies rustup ships with a
# target's standard library ("self-contained") would clash with them.
export "CARGO_TARGET_${upper}_RUSTFLAGS=-C link-self-contained=no"

# The standard library: rustup's download when there is one, else built from rust-src. The
# target (and -Z) go right after the cargo command, before any `--` of the caller's.
command="$1"
shift
if rustup target list --installed | grep -qx "$target" ||
  rustup target add "$target" >"$zig_root/rustup-$target.log" 2>&1; then
  exec cargo "$command" --target "$target" "$@"
fi
reason="$(grep -m1 -E '^error' "$zig_root/rustup-$target.log" || tail -n 1 "$zig_root/rustup-$target.log")"
echo "scripts/pi_cargo.sh: rustup cannot download the standard library for $target ($reason): building it from source (-Zbuild-std)" >&2
if ! rustup component list --installed | grep -q '^rust-src'; then
  rustup component add rust-src >&2
fi
RUSTC_BOOTSTRAP=1 exec cargo "$command" --target "$target" -Zbuild-std=std,panic_abort "$@"
