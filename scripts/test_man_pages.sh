#!/usr/bin/env bash
# Checks the man pages scripts/man_pages.py writes: no groff warnings (man-db's check, as lintian
# runs it), a whatis entry in each, every subcommand and every config key in them, the FILES paths
# still named by the crates, and reproducible gzip files. Does not build anything.
#   scripts/test_man_pages.sh [BINARY]    (default: target/debug/syhub-ntp)
set -euo pipefail

cd "$(dirname "$0")/.."
binary=${1:-target/debug/syhub-ntp}
config=crates/config/src/default.toml
[[ -x $binary ]] || { echo "test_man_pages: no executable $binary (build it first)" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

python3 scripts/man_pages.py --binary "$binary" --config "$config" --out "$out" --date 2000-01-01
mkdir "$out/again"
python3 scripts/man_pages.py --binary "$binary" --config "$config" --out "$out/again" \
    --date 2000-01-01 --gzip-only

# The page as plain text, one paragraph a line as far as fits, no hyphenation.
plain() { LC_ALL=C.UTF-8 MANWIDTH=250 man --nh --nj -l "$1" 2>/dev/null | col -b; }

for page in syhub-ntp.8 syhub-ntp.toml.5; do
    for file in "$out/$page" "$out/$page.gz"; do
        warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
            man --warnings -E UTF-8 -l -Tutf8 -Z "$file" 2>&1 >/dev/null) || true
        [[ -z $warnings ]] || fail "groff warns about $page:"$'\n'"$warnings"
    done
    whatis=$(lexgrog "$out/$page" 2>&1) || true
    [[ $whatis == *": \"${page%.*} - "* ]] || fail "lexgrog finds no whatis entry in $page: $whatis"
    cmp -s <(zcat "$out/$page.gz") "$out/$page" || fail "$page.gz is not $page compressed"
    cmp -s "$out/$page.gz" "$out/again/$page.gz" || fail "$page.gz differs between two runs"
    # gzip header: magic, deflate, no flags (so no file name), mtime 0.
    header=$(od -An -tx1 -N8 "$out/$page.gz" | tr -d ' \n')
    [[ $header == 1f8b080000000000 ]] || fail "$page.gz header $header: a name or an mtime in it"
done

# Every subcommand the binary lists has its own .SS in syhub-ntp(8).
commands=$("$binary" --help | awk '/^Commands:/ { on = 1; next } /^[^ ]/ { on = 0 } on && NF { print $1 }')
[[ -n $commands ]] || fail "$binary --help lists no commands"
program_page=$(sed 's/\\-/-/g' "$out/syhub-ntp.8")  # held, since grep -q would cut a pipe short
for command in $commands; do
    [[ $command == help ]] && continue
    grep -qxF ".SS \"$command\"" <<<"$program_page" \
        || fail "syhub-ntp.8 has no section for the command '$command'"
done

# Every key of the default config, set or in a commented-out example, is shown in syhub-ntp.toml(5).
config_page=$(plain "$out/syhub-ntp.toml.5")
keys=$(sed -nE 's/^[[:space:]]*(#[[:space:]]*)?([A-Za-z_][A-Za-z0-9_-]*)[[:space:]]*=.*/\2/p' "$config" | sort -u)
for key in $keys; do
    grep -qE "(^|[^[:alnum:]_])$key = " <<<"$config_page" \
        || fail "syhub-ntp.toml.5 does not show the key '$key ='"
done

# The paths in FILES are still the ones the crates use.
for path in $(sed -nE 's/^ *\("(\/[^"]+)", .*/\1/p' scripts/man_pages.py); do
    grep -rqF "\"$path\"" crates --include=*.rs || fail "no crate names $path (FILES in man_pages.py)"
done

if ((failures)); then
    echo "test_man_pages: $failures check(s) failed" >&2
    exit 1
fi
echo "test_man_pages: ok ($(wc -w <<<"$commands") commands, $(wc -w <<<"$keys") keys)"
