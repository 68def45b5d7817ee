#!/usr/bin/env bash
# GraphQL-over-HTTP conformance: installs tests/graphql-http (graphql-http from npm, at the version
# pinned in its package-lock.json) and runs graphql-http's 61 server audits against GraphQL
# endpoints. With no arguments it builds and starts the local stack on free ports and audits the
# router and the three subgraphs; or name running endpoints yourself:
#   bash scripts/graphql-http-test.sh router=http://127.0.0.1:4000/graphql users=http://127.0.0.1:5001/graphql
# (with SUBGRAPH_SECRET set to the secret the subgraphs were started with, if any)
# Exits non-zero if any audit (MUST, SHOULD or MAY) fails.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tests/graphql-http && npm ci --no-audit --no-fund --loglevel=error)
if [ "$#" -gt 0 ]; then
  exec node tests/graphql-http/audit.mjs "$@"
fi
cargo build --locked --bin taproom
# The stack's subgraphs answer only callers presenting its subgraph secret: choose it, so the audit
# can present it too.
export TAPROOM_SUBGRAPH_SECRET="audit-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export SUBGRAPH_SECRET="$TAPROOM_SUBGRAPH_SECRET"
source scripts/stack.sh
trap stack_exit EXIT
stack_start
node tests/graphql-http/audit.mjs \
  "router=http://127.0.0.1:$router/graphql" \
  "users=http://127.0.0.1:$users/graphql" \
  "beers=http://127.0.0.1:$beers/graphql" \
  "orders=http://127.0.0.1:$orders/graphql"
