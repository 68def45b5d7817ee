#!/usr/bin/env bash
# The router's frontend features with real clients (subscriptions too: graphql-ws, graphql-sse):
# installs tests/apollo (@apollo/client and the others from npm,
# at the versions pinned in its package-lock.json), builds and starts the local stack on free ports,
# starts a second router beside it with --safelist over schema/persisted-documents.json, and runs
# tests/apollo under Node. Stops both whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tests/apollo && npm ci --no-audit --no-fund --loglevel=error)
cargo build --locked --bin taproom
export TAPROOM_SUBGRAPH_SECRET="apollo-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
source scripts/stack.sh
safelist_pid=""
cleanup() {
  local rc=$?
  if [ -n "$safelist_pid" ]; then kill -TERM "$safelist_pid" 2>/dev/null || true; wait "$safelist_pid" 2>/dev/null || true; fi
  stack_stop || rc=1
  exit "$rc"
}
trap cleanup EXIT
stack_start
safelisted=$(free_port)
SUBGRAPH_SECRET="$TAPROOM_SUBGRAPH_SECRET" target/debug/taproom router serve \
  --listen "127.0.0.1:$safelisted" \
  --subgraph "users=http://127.0.0.1:$users/graphql,beers=http://127.0.0.1:$beers/graphql,orders=http://127.0.0.1:$orders/graphql" \
  --persisted-documents schema/persisted-documents.json --safelist \
  >"$stack_data/safelist-router.log" 2>&1 &
safelist_pid=$!
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$safelisted/health" >/dev/null; then break; fi
  if ! kill -0 "$safelist_pid" 2>/dev/null; then cat "$stack_data/safelist-router.log" >&2; exit 1; fi
  sleep 0.2
done
(cd tests/apollo && TAPROOM_ROUTER_URL="http://127.0.0.1:$router" \
  TAPROOM_SAFELIST_ROUTER_URL="http://127.0.0.1:$safelisted" \
  TAPROOM_MANIFEST="$PWD/../../schema/persisted-documents.json" node --test)
