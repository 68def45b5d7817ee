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
data=$(mktemp -d /tmp/taproom-browser.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
router=$(free_port); users=$(free_port); beers=$(free_port); orders=$(free_port)
target/debug/taproom --data-dir "$data" --router-port "$router" --users-port "$users" \
  --beers-port "$beers" --orders-port "$orders" >"$data/stack.log" 2>&1 &
stack=$!
cleanup() {
  kill -TERM "$stack" 2>/dev/null || true
  wait "$stack" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 1 600); do
  if curl -sf "http://127.0.0.1:$router/health" >/dev/null; then break; fi
  if ! kill -0 "$stack" 2>/dev/null; then cat "$data/stack.log" >&2; echo "browser-test.sh: the stack did not start" >&2; exit 1; fi
  sleep 0.2
done
mkdir -p target
(cd tests/browser && TAPROOM_ROUTER_URL="http://127.0.0.1:$router/" TAPROOM_SCREENSHOT="$PWD/../../target/playground.png" node --test)
