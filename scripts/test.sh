#!/usr/bin/env bash
# Runs every test of the workspace on SQLite and PostgreSQL: starts a throwaway PostgreSQL cluster,
# runs `cargo test`, and stops the cluster whatever the outcome. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh
trap pg_stop EXIT
pg_start
cargo test --workspace --locked "$@"
