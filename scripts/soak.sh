#!/usr/bin/env bash
# The soak: `bash scripts/soak.sh [minutes]` (default 10). The local stack on PostgreSQL (a
# throwaway cluster, or $TAPROOM_TEST_POSTGRES_URL's server) under 64 connections of mixed shop
# traffic (taproom-load: catalog pages, carts with owner and beers, addToOrder, checkout) for N
# minutes. Every 30 s it prints the interval's requests, errors, p50 and p99, and each service's
# resident memory. It fails on any failed request, or if a service's RSS at the end is more than
# 20% above what it was after the warm-up (the first quarter of the run, at most 2 minutes).
# SOAK_PROFILE=release soaks release binaries (the README's figures); the default is the debug
# build the tests use. SOAK_CONNECTIONS changes the 64.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
[[ "$minutes" =~ ^[0-9]+$ ]] && (( minutes > 0 )) || { echo "soak: minutes must be a positive whole number" >&2; exit 2; }
profile=${SOAK_PROFILE:-debug}
connections=${SOAK_CONNECTIONS:-64}
case "$profile" in
  debug) cargo build --locked -q --bins -p taproom ;;
  release) cargo build --locked -q --release --bins -p taproom ;;
  *) echo "soak: SOAK_PROFILE must be debug or release" >&2; exit 2 ;;
esac
bin=target/$profile

work=$(mktemp -d /tmp/taproom-soak.XXXXXX)
stack_pid=
load_pid=
cleanup() {
  [[ -n "$load_pid" ]] && kill -TERM "$load_pid" 2>/dev/null || true
  if [[ -n "$stack_pid" ]] && kill -0 "$stack_pid" 2>/dev/null; then
    kill -TERM "$stack_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$stack_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$stack_pid" 2>/dev/null || true
  fi
  [[ -n "${own_pg:-}" ]] && pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
if [[ -z "${TAPROOM_TEST_POSTGRES_URL:-}" ]]; then
  source scripts/postgres.sh
  own_pg=1
  pg_start
fi
# The server part of the URL (scheme, user, host and port), without a database or parameters.
server=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(f"{p.scheme}://{p.netloc}")' "$TAPROOM_TEST_POSTGRES_URL")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
router_port=$(free_port); users_port=$(free_port); beers_port=$(free_port); orders_port=$(free_port)
"$bin/taproom" --data-dir "$work/data" --postgres-url "$server" --router-port "$router_port" \
  --users-port "$users_port" --beers-port "$beers_port" --orders-port "$orders_port" \
  >"$work/stack.out" 2>"$work/stack.err" &
stack_pid=$!
for _ in $(seq 1 600); do
  grep -q "Taproom is running." "$work/stack.out" && break
  kill -0 "$stack_pid" 2>/dev/null || { cat "$work/stack.err" >&2; echo "soak: the stack did not start" >&2; exit 1; }
  sleep 0.1
done
grep -q "Taproom is running." "$work/stack.out" || { echo "soak: the stack did not start within 60 s" >&2; exit 1; }

# Each service's pid, by the port it listens on (the stack marks its children with its pid).
service_pid() {
  local port=$1 pid env
  for pid in $(grep -l "TAPROOM_SUPERVISOR_PID=$stack_pid" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do
    env=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null) || continue
    if grep -qx "TAPROOM_SUPERVISOR_PID=$stack_pid" <<<"$env" && grep -qx "LISTEN=127.0.0.1:$port" <<<"$env"; then
      echo "$pid"; return
    fi
  done
}
names=(users beers orders router)
ports=("$users_port" "$beers_port" "$orders_port" "$router_port")
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
pids=()
for port in "${ports[@]}"; do pids+=("$(service_pid "$port")"); done

echo "soak: $minutes min, $connections connections, $profile binaries, PostgreSQL at ${server##*@}"
"$bin/taproom-load" --router "http://127.0.0.1:$router_port/graphql" --connections "$connections" \
  --duration-secs $((minutes * 60)) --report-every-secs 30 --prefix "soak-$(date +%s)" \
  >"$work/load.out" 2>"$work/load.err" &
load_pid=$!
# The warm-up: a quarter of the run, at most 2 minutes, in whole 30 s samples.
warmup=$(( (minutes * 15 + 29) / 30 * 30 )); (( warmup > 120 )) && warmup=120
declare -A baseline last
start=$SECONDS
next=30
printed=0
while kill -0 "$load_pid" 2>/dev/null; do
  sleep 1
  # The load's own interval lines, as they come.
  total=$(wc -l <"$work/load.out")
  if (( total > printed )); then sed -n "$((printed + 1)),${total}p" "$work/load.out"; printed=$total; fi
  if (( SECONDS - start >= next )); then
    line="t=$(printf '%4d' "$next")s rss"
    for i in "${!names[@]}"; do
      mb=$(rss_mb "${pids[$i]}")
      line+=" ${names[$i]}=${mb}MB"
      last[${names[$i]}]=$mb
      (( next == warmup )) && baseline[${names[$i]}]=$mb
    done
    (( next == warmup )) && line+="  (end of warm-up: the baseline)"
    echo "$line"
    next=$((next + 30))
  fi
done
wait "$load_pid" || { cat "$work/load.err" >&2; echo "soak: taproom-load failed" >&2; exit 1; }
total=$(wc -l <"$work/load.out")
(( total > printed )) && sed -n "$((printed + 1)),${total}p" "$work/load.out"
line="t=$(printf '%4d' $((SECONDS - start)))s rss"
for i in "${!names[@]}"; do mb=$(rss_mb "${pids[$i]}"); line+=" ${names[$i]}=${mb}MB"; last[${names[$i]}]=$mb; done
echo "$line (end)"

failed=0
summary=$(grep '^total ' "$work/load.out" || true)
errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$summary")
if [[ -z "$errors" ]]; then echo "soak: FAIL: taproom-load printed no total" >&2; failed=1
elif (( errors > 0 )); then
  echo "soak: FAIL: $errors requests failed" >&2
  failed=1
fi
grep -q . "$work/load.err" && sed 's/^/load: /' "$work/load.err" >&2
for name in "${names[@]}"; do
  base=${baseline[$name]:-}
  end=${last[$name]:-}
  if [[ -z "$base" || "$base" == "?" || -z "$end" || "$end" == "?" ]]; then
    echo "soak: FAIL: no RSS figures for $name (did it stop?)" >&2; failed=1; continue
  fi
  growth=$(awk -v b="$base" -v e="$end" 'BEGIN { printf "%.1f", (e - b) / b * 100 }')
  echo "soak: $name RSS ${base} MB after warm-up, ${end} MB at the end (${growth}%)"
  if awk -v g="$growth" 'BEGIN { exit !(g > 20) }'; then
    echo "soak: FAIL: $name grew by ${growth}% after warm-up (more than 20%)" >&2; failed=1
  fi
done
if grep -q "stopped unexpectedly" "$work/stack.err"; then
  grep "stopped unexpectedly" "$work/stack.err" >&2
  echo "soak: FAIL: a service stopped during the soak" >&2; failed=1
fi
(( failed == 0 )) && echo "soak: passed: $summary"
exit "$failed"
