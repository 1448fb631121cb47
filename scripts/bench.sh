#!/usr/bin/env bash
# Runs every benchmark. `--smoke` runs each briefly so CI keeps them working; without it, the
# full runs whose figures go into notes.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:---full}"
for bench in $(ls crates/*/benches/*.rs 2>/dev/null); do
  crate="$(basename "$(dirname "$(dirname "$bench")")")"
  name="$(basename "$bench" .rs)"
  echo "== bench $crate/$name ($mode)"
  cargo bench --locked -p "$crate" --bench "$name" -- "$mode"
done
