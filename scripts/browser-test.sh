#!/usr/bin/env bash
# The playground in a real browser: builds the stack binary, starts it on free ports with a fresh data
# folder, runs tests/browser with Debian's headless Chromium (installed if missing), stops the stack.
# The screenshot is saved to target/playground.png.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  echo "browser-test.sh: installing Debian's chromium" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
cargo build --locked --bin taproom
source scripts/stack.sh
trap stack_exit EXIT
stack_start
mkdir -p target
(cd tests/browser && TAPROOM_ROUTER_URL="http://127.0.0.1:$router/" TAPROOM_SCREENSHOT="$PWD/../../target/playground.png" node --test)
