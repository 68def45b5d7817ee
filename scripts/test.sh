#!/usr/bin/env bash
# Runs every test: the Kubernetes manifests' validation, the workspace's tests on SQLite and
# PostgreSQL (a throwaway PostgreSQL cluster is started and stopped whatever the outcome), a
# two-minute soak, the multi-host test, then the playground in headless Chromium, then the
# frontend features with @apollo/client, then the GraphQL-over-HTTP audit (graphql-http) of the
# router and every subgraph.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Kubernetes manifests, against the Kubernetes schemas (offline).
bash scripts/check-manifests.sh
# The stack test scrapes the services with a real Prometheus, and the multi-host test balances
# replicas with HAProxy (Debian's packages).
for package in prometheus haproxy; do
  if ! command -v "$package" >/dev/null && ! [ -x "/usr/sbin/$package" ]; then
    echo "test.sh: installing Debian's $package" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  fi
done
source scripts/postgres.sh
trap pg_stop EXIT
pg_start
cargo test --workspace --locked "$@"
# The soak: two minutes of 64 connections on the stack on PostgreSQL.
bash scripts/soak.sh 2
pg_stop
trap - EXIT
# Replicas on separate hosts (network namespaces it makes and removes) behind HAProxy, on
# PostgreSQL: a kill, a rolling restart and a database cut under load. Needs root.
cargo test --locked -p taproom --test hosts -- --ignored --nocapture
bash scripts/browser-test.sh
bash scripts/apollo-test.sh
bash scripts/graphql-http-test.sh
