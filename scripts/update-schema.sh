#!/usr/bin/env bash
# Regenerates schema/: each subgraph's SDL from its code, the supergraph composed from them, and the
# API schema clients see, and the persisted query manifest of the frontend's operations. Review the diff (and `taproom-router check --base HEAD`) before committing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -p taproom-users -p taproom-beers -p taproom-orders -p taproom-router --bins
for name in users beers orders; do
  "target/debug/taproom-$name" sdl > "schema/$name.graphql"
done
target/debug/taproom-router compose --schema-dir schema --output schema/supergraph.graphql
target/debug/taproom-router api-schema --supergraph schema/supergraph.graphql --output schema/api.graphql
target/debug/taproom-router manifest --operations schema/operations --supergraph schema/supergraph.graphql \
  --output schema/persisted-documents.json
echo "schema/ regenerated"
