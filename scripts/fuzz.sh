#!/usr/bin/env bash
# Fuzzes the router's request path and the subgraphs' HTTP layer and input rules with cargo-fuzz
# (nightly, libFuzzer with AddressSanitizer), SECONDS per target (default 60):
#   router_request     POST body → parse → limits → validate → @defer split → normalize → plan → variables
#   router_ws_message  a WebSocket message (graphql-transport-ws) → a subscribe's payload, as router_request
#   subgraph_http    any body to the beers subgraph's /graphql as an admin (SQLite scratch database)
#   subgraph_inputs  prices, skus, names, searches, image URLs, usernames, emails, passwords
# Each run starts from the seeds (fuzz/seeds/<target>) and first replays every input kept from an
# earlier crash (fuzz/regressions/<target>). A crash fails the script; libFuzzer leaves the input in
# fuzz/artifacts/<target>/: fix the cause, then copy the input into fuzz/regressions/<target>/.
# Longer runs: `bash scripts/fuzz.sh 3600`, or `cargo +nightly fuzz run <target>` for as long as you like.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! cargo fuzz --help >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
targets=(router_request router_ws_message subgraph_http subgraph_inputs)
cargo +nightly fuzz build -O
for target in "${targets[@]}"; do
  echo "== fuzz $target for ${seconds}s"
  corpus=$(mktemp -d /tmp/taproom-fuzz-corpus.XXXXXX)
  status=0
  dirs=("$corpus" "fuzz/seeds/$target")
  if [ -d "fuzz/regressions/$target" ]; then dirs+=("fuzz/regressions/$target"); fi
  cargo +nightly fuzz run -O "$target" "${dirs[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 || status=$?
  rm -rf "$corpus"
  if [ "$status" -ne 0 ]; then
    echo "fuzz.sh: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit "$status"
  fi
done
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no crash"
