# Sourced by the scripts: `need_packages NAME...` installs the Debian packages not yet installed,
# without starting any service they bring (a policy-rc.d refuses every start meanwhile).
need_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    # A policy-rc.d that refuses every service start keeps chrony's package from starting chronyd.
    local policy=/usr/sbin/policy-rc.d
    local own_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy"
      chmod 755 "$policy"
      own_policy=1
    fi
    cleanup_policy() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
    trap cleanup_policy EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" || {
      apt-get update -q
      apt-get install -y --no-install-recommends "${missing[@]}"
    }
    cleanup_policy
    trap - EXIT
  fi
}
