#!/usr/bin/env bash
# Runs every coverage-guided fuzz target of fuzz/ (cargo fuzz, nightly toolchain) for N
# executions and prints, per target, the executions made and the crashes found. Not part of CI
# (CI has no nightly); CI checks the same properties with proptest (docs/RELIABILITY.md#fuzzing).
#   bash scripts/fuzz.sh                  1,000,000 executions per target
#   bash scripts/fuzz.sh --runs N         N executions per target
#   bash scripts/fuzz.sh --smoke          10,000 executions per target
#   bash scripts/fuzz.sh --only NAME      one target
#   bash scripts/fuzz.sh --max-seconds S  stop each target after S seconds (executions so far printed)
# Needs `cargo install cargo-fuzz --locked`. Builds into $FUZZ_TARGET_DIR (default target-fuzz/);
# FUZZ_SANITIZER (default none: panics are what the properties raise, the code has no unsafe)
# may be address. A crash's input is left in fuzz/artifacts/TARGET/; replay it with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…`, then fix it and add the input
# as a regression test on stable (the `fuzz_props` test modules).
set -uo pipefail
cd "$(dirname "$0")/.."
runs=1000000
only=""
max_seconds=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) runs=10000 ;;
    --runs) runs="$2"; shift ;;
    --only) only="$2"; shift ;;
    --max-seconds) max_seconds="$2"; shift ;;
    *) echo "usage: scripts/fuzz.sh [--smoke] [--runs N] [--only TARGET] [--max-seconds S]" >&2; exit 2 ;;
  esac
  shift
done
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target-fuzz}"
san="${FUZZ_SANITIZER:-none}"
cd fuzz
cargo +nightly fuzz build -s "$san" >&2 || exit 1
targets="${only:-$(cargo +nightly fuzz list)}"
total_crashes=0
printf '%-18s %12s %8s %9s\n' target executions crashes seconds
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # Seeds: the documented configuration for the config target.
  [ "$t" = config ] && cp -n ../config/example.toml corpus/config/example.toml
  before=$(find "artifacts/$t" -type f | wc -l)
  log="$(mktemp)"
  start=$(date +%s)
  cargo +nightly fuzz run -s "$san" "$t" "corpus/$t" -- \
    -runs="$runs" -max_total_time="$max_seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1
  secs=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(( $(find "artifacts/$t" -type f | wc -l) - before ))
  total_crashes=$(( total_crashes + crashes ))
  printf '%-18s %12s %8s %9s\n' "$t" "${execs:-?}" "$crashes" "$secs"
  if [ "$crashes" -gt 0 ]; then
    grep -m3 -E 'panicked|ERROR' "$log" | sed 's/^/    /'
  fi
  rm -f "$log"
done
[ "$total_crashes" -eq 0 ]
