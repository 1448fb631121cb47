#!/usr/bin/env bash
# Runs every benchmark (crates/*/benches/*.rs, harness = false; each prints its figures).
#   bash scripts/bench.sh           full runs, optimised build: the figures quoted in notes
#   bash scripts/bench.sh --smoke   short runs on the test build, so CI keeps them working
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:---full}"
for bench in crates/*/benches/*.rs; do
  [ -e "$bench" ] || continue
  crate="$(basename "$(dirname "$(dirname "$bench")")")"
  name="$(basename "$bench" .rs)"
  echo "== bench $crate/$name ($mode)"
  if [ "$mode" = "--smoke" ]; then
    # The debug build the tests already made: checks the benchmark runs, quotes no figure.
    cargo test --locked -p "$crate" --bench "$name" -- --smoke
  else
    cargo bench --locked -p "$crate" --bench "$name" -- --full
  fi
  # The access review benchmark also runs on PostgreSQL (the backend of a fleet).
  if [ "$name" = "reviews" ] && [ -n "${EXOGATE_TEST_PG_URL:-}" ]; then
    echo "== bench $crate/$name ($mode --pg)"
    if [ "$mode" = "--smoke" ]; then
      cargo test --locked -p "$crate" --bench "$name" -- --smoke --pg
    else
      cargo bench --locked -p "$crate" --bench "$name" -- --full --pg
    fi
  fi
done
