#!/usr/bin/env bash
# The benchmark, one command: builds Taproom in release mode, installs the peer gateways (pinned in
# bench/gateways/package-lock.json) into bench/gateways/node_modules, and runs taproom-bench.
# Extra arguments go to taproom-bench (see `--help`), e.g. `bash bench/run.sh --duration 5 --rounds 1`.
# Results: target/bench/results.md, results.json and chart.svg.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p taproom -p taproom-bench
# Reinstall only when the lockfile changed since the last install.
stamp=bench/gateways/node_modules/.taproom-installed-lock.json
if ! cmp -s bench/gateways/package-lock.json "$stamp" 2>/dev/null; then
    npm ci --prefix bench/gateways --no-audit --no-fund --loglevel=error
    cp bench/gateways/package-lock.json "$stamp"
fi
exec target/release/taproom-bench "$@"
