#!/usr/bin/env bash
# The Debian package as an admin and an image builder meet it: a bookworm chroot (debootstrap,
# minbase plus systemd and nftables) entered in a private mount namespace, inside a network
# namespace of its own under `setpriv --bounding-set -sys_time`, so neither the host's firewall
# nor its clock can be reached. Checks that the first configure sets up and leaves the firewall
# alone in a chroot; that units go through deb-systemd-helper and starts through
# deb-systemd-invoke (policy-rc.d respected; a logging systemctl stand-in shows every call);
# that a reinstall keeps a disabled unit disabled and an edited config; remove and purge; and a
# source install followed by the package (the package's units apply, dpkg keeps its binary).
#
#   sudo ./scripts/package_chroot.sh DEB      (scripts/package.sh builds DEB)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/packages.sh

deb="${1:?usage: scripts/package_chroot.sh DEB}"
[ "$(id -u)" -eq 0 ] || { echo "scripts/package_chroot.sh: run as root (debootstrap, namespaces)" >&2; exit 1; }
need_packages debootstrap iproute2 util-linux nftables

work="$(mktemp -d /var/tmp/syhub-chroot.XXXXXX)"
root="$work/root"
ns="syhub-chroot-$$"
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

mirror="${SYHUB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [ -n "${SYHUB_CHROOT_CACHE:-}" ] && [ -d "$SYHUB_CHROOT_CACHE/usr" ]; then
  # For repeated runs by hand: a bootstrapped tree to copy instead of a fresh debootstrap.
  echo "== copying the bookworm tree $SYHUB_CHROOT_CACHE"
  cp -a "$SYHUB_CHROOT_CACHE" "$root"
else
  echo "== debootstrap bookworm ($mirror)"
  debootstrap --variant=minbase --include=systemd,init-system-helpers,nftables bookworm "$root" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log"; exit 1; }
fi
cp "$deb" "$root/tmp/syhub-ntp.deb"
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/bin/syhub-ntp >"$root/tmp/syhub-ntp-source"
chmod 755 "$root/tmp/syhub-ntp-source"

# A systemctl stand-in ahead on PATH: logs each call; what needs a running systemd (reload,
# start, stop, is-active) succeeds without doing anything, the rest (preset, is-enabled) is
# passed to the real systemctl, which works offline in a chroot.
cat >"$root/usr/local/sbin/systemctl" <<'EOF'
#!/bin/sh
echo "systemctl $*" >>/var/log/systemctl-calls
for word in "$@"; do
  case "$word" in
    daemon-reload|start|restart|try-restart|stop|reload) exit 0;;
    is-active) echo active; exit 0;;
  esac
done
exec /usr/bin/systemctl "$@"
EOF
chmod 755 "$root/usr/local/sbin/systemctl"

ip netns add "$ns"
ip -n "$ns" link set lo up
# The namespace's own firewall, one that drops: a firewall is "in use" as far as install can see.
ip netns exec "$ns" nft -f - <<'EOF'
table inet filter {
  chain input { type filter hook input priority 0; policy drop; iif lo accept; }
}
EOF
ruleset_before="$(ip netns exec "$ns" nft list ruleset)"

# Runs a shell command line inside the chroot: proc and dev mounted in a private mount namespace.
in_chroot() {
  ip netns exec "$ns" unshare --mount --propagation private \
    setpriv --bounding-set -sys_time -- sh -c '
      mount -t proc proc "$0/proc" && mount --rbind /dev "$0/dev" &&
      exec chroot "$0" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -ec "$1"' \
    "$root" "$1"
}
fail() { echo "scripts/package_chroot.sh: FAIL: $*" >&2; exit 1; }
check() { local what="$1"; shift; if "$@"; then echo "ok: $what"; else fail "$what"; fi; }
wanted() { [ -L "$root/etc/systemd/system/multi-user.target.wants/$1" ]; }

echo "== first install, as an image build does (no systemd running, policy-rc.d refusing)"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
in_chroot 'dpkg -i /tmp/syhub-ntp.deb' >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i"; }
cat "$work/install.log"
check "the account exists" grep -q '^syhub-ntp:' "$root/etc/passwd"
check "the config is written" test -s "$root/etc/syhub-ntp/config.toml"
check "the daemon's unit is enabled" wanted syhub-ntp.service
check "the wait-sync unit is enabled" wanted syhub-ntp-wait-sync.service
check "install says it leaves the firewall alone in a chroot" grep -q "looks like a chroot" "$work/install.log"
check "the namespace's firewall is unchanged" test "$(ip netns exec "$ns" nft list ruleset)" = "$ruleset_before"
check "nothing started, stopped, enabled or disabled by systemctl without systemd running" \
  bash -c '! grep -Eq "(^| )(enable|disable|start|restart|try-restart|stop)( |$)" "$0/var/log/systemctl-calls"' "$root"
in_chroot 'syhub-ntp config check' >/dev/null || fail "config check of the installed config"
echo "ok: config check passes"

echo "== the admin disables wait-sync and edits the config; the same package is installed again"
rm "$root/etc/systemd/system/multi-user.target.wants/syhub-ntp-wait-sync.service"
echo "# the admin's line" >>"$root/etc/syhub-ntp/config.toml"
config_before="$(sha256sum <"$root/etc/syhub-ntp/config.toml")"
in_chroot 'dpkg -i /tmp/syhub-ntp.deb' >"$work/reinstall.log" 2>&1 || { cat "$work/reinstall.log"; fail "dpkg -i again"; }
check "wait-sync stays disabled" bash -c '! [ -e "$0/etc/systemd/system/multi-user.target.wants/syhub-ntp-wait-sync.service" ]' "$root"
check "the daemon's unit stays enabled" wanted syhub-ntp.service
check "the admin's config is kept byte for byte" test "$(sha256sum <"$root/etc/syhub-ntp/config.toml")" = "$config_before"

echo "== systemd running: starts go through deb-systemd-invoke, which asks policy-rc.d"
mkdir -p "$root/run/systemd/system"
in_chroot 'dpkg -i /tmp/syhub-ntp.deb' >"$work/refused.log" 2>&1 || { cat "$work/refused.log"; fail "dpkg -i with policy-rc.d"; }
check "policy-rc.d refused the restart" bash -c '! grep -Eq " (start|restart) " "$0/var/log/systemctl-calls"' "$root"
rm "$root/usr/sbin/policy-rc.d"
in_chroot 'dpkg -i /tmp/syhub-ntp.deb' >"$work/allowed.log" 2>&1 || { cat "$work/allowed.log"; fail "dpkg -i without policy-rc.d"; }
check "without policy-rc.d the upgrade restarts the daemon" grep -Eq "restart syhub-ntp.service" "$root/var/log/systemctl-calls"
check "systemctl is never asked to enable, disable or stop anything" \
  bash -c '! grep -Eq "(^| )(enable|disable|stop)( |$)" "$0/var/log/systemctl-calls"' "$root"
rm -rf "$root/run/systemd/system"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

echo "== remove, then purge"
in_chroot 'dpkg -r syhub-ntp' >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "dpkg -r"; }
check "remove takes the binary" test ! -e "$root/usr/bin/syhub-ntp"
check "remove keeps the config" test -s "$root/etc/syhub-ntp/config.toml"
check "remove keeps the account" grep -q '^syhub-ntp:' "$root/etc/passwd"
in_chroot 'dpkg -P syhub-ntp' >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg -P"; }
check "purge takes the config" test ! -e "$root/etc/syhub-ntp"
check "purge takes the enabling" bash -c '! ls "$0"/etc/systemd/system/*.wants/syhub-ntp* 2>/dev/null' "$root"

echo "== installed from source first, then the package"
rm "$root/usr/local/sbin/systemctl"  # the real one works offline in a chroot: enable makes links
in_chroot '/tmp/syhub-ntp-source install --no-firewall' >"$work/source.log" 2>&1 || { cat "$work/source.log"; fail "source install"; }
check "the source install wrote its own unit" test -e "$root/etc/systemd/system/syhub-ntp.service"
in_chroot 'dpkg -i /tmp/syhub-ntp.deb' >"$work/adopt.log" 2>&1 || { cat "$work/adopt.log"; fail "dpkg -i after a source install"; }
cat "$work/adopt.log"
check "the source install's units no longer shadow the package's" test ! -e "$root/etc/systemd/system/syhub-ntp.service"
check "the daemon's unit is enabled from the package" \
  test "$(readlink "$root/etc/systemd/system/multi-user.target.wants/syhub-ntp.service")" = /lib/systemd/system/syhub-ntp.service
in_chroot 'dpkg -S /usr/bin/syhub-ntp' | grep -q '^syhub-ntp: ' || fail "dpkg owns /usr/bin/syhub-ntp"
in_chroot 'syhub-ntp uninstall' >"$work/uninstall.log" 2>&1 || { cat "$work/uninstall.log"; fail "uninstall"; }
cat "$work/uninstall.log"
check "uninstall leaves dpkg's binary" test -x "$root/usr/bin/syhub-ntp"
in_chroot 'dpkg -V syhub-ntp' >"$work/verify.log" 2>&1 || { cat "$work/verify.log"; fail "dpkg -V: a packaged file changed"; }
echo "ok: dpkg -V finds every packaged file intact"
echo "== package in a chroot: all checks passed"
