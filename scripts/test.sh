#!/usr/bin/env bash
# The test command: every suite, on SQLite and PostgreSQL, with nothing skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
export EXOGATE_TEST_PG_URL="${EXOGATE_TEST_PG_URL:-$(bash scripts/pg.sh)}"
export EXOGATE_REQUIRE_ALL_SUITES=1
mkdir -p test-output
cargo nextest run --workspace --locked --no-fail-fast --failure-output final "$@"
