#!/usr/bin/env bash
# The fleet chaos harness (scripts/chaos/chaos.py): 3 `exogate serve` replicas on a PostgreSQL of
# its own and the Microsoft emulator, under SIGKILLs, database restarts and Exchange faults.
#   bash scripts/chaos.sh --smoke     # CI: a few dozen requests, a few kills, one database restart
#   bash scripts/chaos.sh             # full: 1,000 requests, >= 60 kills, 2 database restarts
# EXOGATE_CHAOS_PROFILE=dev uses debug binaries (faster to build, slower to run).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${EXOGATE_CHAOS_PROFILE:-release}"
if [ "$profile" = release ]; then
  cargo build --release --locked -p exogate --bin exogate -p m365-emulator --bin m365-emulator
  dir=target/release
else
  cargo build --locked -p exogate --bin exogate -p m365-emulator --bin m365-emulator
  dir=target/debug
fi
exec python3 scripts/chaos/chaos.py --exogate "$dir/exogate" --emulator "$dir/m365-emulator" "$@"
