#!/usr/bin/env bash
# Runs every test: the workspace's tests on SQLite and PostgreSQL (a throwaway PostgreSQL cluster is
# started and stopped whatever the outcome), then the playground in headless Chromium, then the
# frontend features with @apollo/client, then the GraphQL-over-HTTP audit (graphql-http) of the
# router and every subgraph.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Kubernetes manifests, against the Kubernetes schemas (offline).
bash scripts/check-manifests.sh
# The stack test scrapes the services with a real Prometheus (Debian's package).
if ! command -v prometheus >/dev/null; then
  echo "test.sh: installing Debian's prometheus for the metrics test" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
source scripts/postgres.sh
trap pg_stop EXIT
pg_start
cargo test --workspace --locked "$@"
pg_stop
trap - EXIT
bash scripts/browser-test.sh
bash scripts/apollo-test.sh
bash scripts/graphql-http-test.sh
