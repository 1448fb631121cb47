#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on 127.0.0.1:55432 (trust auth, fsync off, data under /tmp) unless
# one already answers there, and prints its URL. initdb refuses root, so it runs as `postgres`.
set -euo pipefail
port="${EXOGATE_PG_PORT:-55432}"
url="postgres://postgres@127.0.0.1:${port}/postgres"
bindir=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir="$d"; done
[ -n "$bindir" ] || bindir="$(dirname "$(command -v initdb)")"
if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then echo "$url"; exit 0; fi
data="${EXOGATE_PG_DATA:-/tmp/exogate-pg-$port}"

init() {
  rm -rf "$data"; mkdir -p "$data"; chown postgres:postgres "$data"
  runuser -u postgres -- "$bindir/initdb" -D "$data" -A trust -U postgres >/dev/null
}
start() {
  chown -R postgres:postgres "$data"
  runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -l "$data/log" -w -t 60 \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
}

[ -s "$data/PG_VERSION" ] || init
# A data directory left by a killed server may refuse to start: begin again from scratch.
start || { init; start; }
echo "$url"
