#!/usr/bin/env bash
# Installs the system packages the test suite needs, when they are missing:
# PostgreSQL (the second storage backend), Chromium + ChromeDriver (browser tests),
# wrk (load benchmark), and the official Python and TypeScript MCP SDKs (MCP clients exogate did
# not write).
set -euo pipefail
need=()
command -v initdb >/dev/null 2>&1 || [ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The end-to-end MCP test drives exogate with the official SDK's 2.x client API.
if ! python3 -c 'import importlib.metadata as m, sys; sys.exit(int(m.version("mcp").split(".")[0]) < 2)' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'mcp>=2,<3'
fi
# The notification tests: a real SMTP server (aiosmtpd) and an independent Standard Webhooks
# verifier (standardwebhooks).
if ! python3 -c 'import aiosmtpd, standardwebhooks' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'aiosmtpd>=1.4,<2' 'standardwebhooks>=1.0,<2'
fi
# The TypeScript MCP SDK (1.x) test client, pinned by tests/mcp-ts/package-lock.json.
ts_dir="$(cd "$(dirname "$0")/.." && pwd)/crates/exogate/tests/mcp-ts"
if [ ! -f "$ts_dir/node_modules/@modelcontextprotocol/sdk/package.json" ]; then
  (cd "$ts_dir" && npm ci --no-audit --no-fund --silent)
fi
# The MCP Inspector (its CLI mode starts `exogate mcp` over stdio), pinned by
# tests/mcp-inspector/package-lock.json.
inspector_dir="$(cd "$(dirname "$0")/.." && pwd)/crates/exogate/tests/mcp-inspector"
if [ ! -f "$inspector_dir/node_modules/@modelcontextprotocol/inspector/package.json" ]; then
  (cd "$inspector_dir" && npm ci --no-audit --no-fund --silent)
fi
