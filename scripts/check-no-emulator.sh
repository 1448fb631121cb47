#!/usr/bin/env bash
# Checks that a production build of exogate (`--no-default-features`, so without the `demo`
# feature) leaves the Microsoft emulator out: its unauthenticated control API and the demo apps'
# secrets must not be in the binary.
#
#   scripts/check-no-emulator.sh                      the dependency tree only (cheap; CI runs it)
#   scripts/check-no-emulator.sh --binary BIN         also: BIN, built with
#                                                     `cargo build [--release] -p exogate --no-default-features`,
#                                                     holds none of the emulator's markers
#   scripts/check-no-emulator.sh --demo-binary BIN    also: BIN, a default (demo) build, holds
#                                                     every marker, so the strings check can see them
# Both options may be given. Exits non-zero on the first failed check.
set -euo pipefail
cd "$(dirname "$0")/.."

# Strings only the emulator and the demo put in a binary: the demo apps' client secrets, the
# demo users' fixed passwords, the control API's path, and the emulator crate's own symbols and
# source paths.
MARKERS=(demo-client-secret demo-connect-secret demo-admin-pass /_emulator m365_emulator)

binary=""
demo_binary=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --demo-binary) demo_binary="$2"; shift 2 ;;
        *) echo "usage: $0 [--binary BIN] [--demo-binary BIN]" >&2; exit 2 ;;
    esac
done

echo "== cargo tree -p exogate --no-default-features -e normal: no m365-emulator"
tree="$(cargo tree -p exogate --no-default-features -e normal --locked)"
if grep -q m365-emulator <<<"$tree"; then
    echo "FAIL: a build without the demo feature depends on m365-emulator:" >&2
    grep -n m365-emulator <<<"$tree" >&2
    exit 1
fi
# The same check on the default build must find it, or the check above proves nothing.
if ! cargo tree -p exogate -e normal --locked | grep -q m365-emulator; then
    echo "FAIL: the default (demo) build no longer shows m365-emulator; fix this check" >&2
    exit 1
fi
echo "ok"

# Prints how often each marker occurs in the binary "$1" and sets `present` to how many of the
# markers occur at all.
count_markers() {
    present=0
    local m n
    for m in "${MARKERS[@]}"; do
        n="$(strings -n 6 "$1" | grep -cF -- "$m" || true)"
        echo "  $m: $n"
        [[ "$n" == 0 ]] || present=$((present + 1))
    done
}

if [[ -n "$binary" ]]; then
    echo "== strings $binary: no emulator markers"
    count_markers "$binary"
    if [[ "$present" != 0 ]]; then
        echo "FAIL: $binary holds emulator markers" >&2
        exit 1
    fi
    echo "ok"
fi

if [[ -n "$demo_binary" ]]; then
    echo "== strings $demo_binary: every emulator marker present (demo build)"
    count_markers "$demo_binary"
    if [[ "$present" != "${#MARKERS[@]}" ]]; then
        echo "FAIL: $demo_binary lacks a marker: the strings check could not see the emulator" >&2
        exit 1
    fi
    echo "ok"
fi
