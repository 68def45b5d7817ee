#!/usr/bin/env bash
# The benchmark, one command: builds Taproom in release mode, installs the peer gateways (the Node.js
# ones pinned in bench/gateways/package-lock.json into bench/gateways/node_modules; Hive Router built
# from crates.io into bench/.cache/hive-router, once), and runs taproom-bench.
# Extra arguments go to taproom-bench (see `--help`), e.g. `bash bench/run.sh --duration 5 --rounds 1`
# or `--gateways taproom,apollo` (then Hive Router is not installed).
# Results: target/bench/results.md, results.json and chart.svg.
# `bash bench/run.sh --instructions` counts instructions per request under valgrind's callgrind
# instead (Taproom's router and Hive Router, dedupe off and on): target/bench/instructions.md.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p taproom -p taproom-bench
# Reinstall only when the lockfile changed since the last install.
stamp=bench/gateways/node_modules/.taproom-installed-lock.json
if ! cmp -s bench/gateways/package-lock.json "$stamp" 2>/dev/null; then
    npm ci --prefix bench/gateways --no-audit --no-fund --loglevel=error
    cp bench/gateways/package-lock.json "$stamp"
fi

# Hive Router: needed unless --gateways leaves both of its modes out.
gateways="taproom,hive-router,taproom-dedupe,hive-router-dedupe,apollo,hive"
args=("$@")
for i in "${!args[@]}"; do
    case "${args[$i]}" in
        --instructions)
            if ! command -v valgrind >/dev/null; then
                echo "bench: installing Debian's valgrind" >&2
                apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
            fi ;;
        --gateways=*) gateways="${args[$i]#--gateways=}" ;;
        --gateways) gateways="${args[$((i + 1))]:-}" ;;
    esac
done
hive_version=0.3.10
hive_root=bench/.cache/hive-router
if [[ ",$gateways," == *",hive-router"* ]] && [[ ! -x "$hive_root/bin/hive_router" ]]; then
    echo "bench: installing Hive Router $hive_version from crates.io into $hive_root (first run only; about 45 minutes on 2 cores)..." >&2
    mkdir -p "$hive_root"
    # Its build needs the nightly toolchain; the graphiql feature skips an npm step.
    cargo +nightly install hive-router --version "$hive_version" --locked --features graphiql \
        --root "$hive_root" 2>&1 | while IFS= read -r line; do
        case "$line" in
            *Compiling*) printf '\rbench: Hive Router: %-70.70s' "$line" >&2 ;;
            error*|*"error:"*) printf '\n%s\n' "$line" >&2 ;;
        esac
    done
    [[ -x "$hive_root/bin/hive_router" ]] || { echo "bench: Hive Router did not install" >&2; exit 1; }
    echo >&2
fi
exec target/release/taproom-bench "$@"
