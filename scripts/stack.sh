# Sourced by test scripts: starts the local stack binary on free ports with a fresh data folder
# (`stack_start`, which sets $router, $users, $beers and $orders to the ports and waits until the
# router answers) and stops it again (`stack_stop`, which fails if the stack or one of its
# services died meanwhile: run it from an EXIT trap as `trap 'stack_exit' EXIT`, which keeps the
# script's own failure and adds the stack's). Build the binary first:
# `cargo build --locked --bin taproom`.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

stack_start() {
  stack_data=$(mktemp -d /tmp/taproom-stack.XXXXXX)
  router=$(free_port); users=$(free_port); beers=$(free_port); orders=$(free_port)
  target/debug/taproom --data-dir "$stack_data" --router-port "$router" --users-port "$users" \
    --beers-port "$beers" --orders-port "$orders" >"$stack_data/stack.log" 2>&1 &
  stack_pid=$!
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$router/health" >/dev/null; then return 0; fi
    if ! kill -0 "$stack_pid" 2>/dev/null; then
      cat "$stack_data/stack.log" >&2
      echo "stack.sh: the stack did not start" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "stack.sh: the router did not answer /health within 120 s" >&2
  return 1
}

# Stops the stack and says whether it ran clean: it fails (after printing the stack's log) if the
# stack exited before it was stopped, did not exit 0 on SIGTERM, or restarted a service that had
# died meanwhile, so a crash during the tests fails them even when the tests did not notice it.
stack_stop() {
  local status=0
  if [ -n "${stack_pid:-}" ]; then
    if ! kill -0 "$stack_pid" 2>/dev/null; then
      echo "stack.sh: the stack exited before it was stopped" >&2
      status=1
    fi
    kill -TERM "$stack_pid" 2>/dev/null || true
    local exited=0
    wait "$stack_pid" 2>/dev/null || exited=$?
    if [ "$exited" -ne 0 ] && [ "$status" -eq 0 ]; then
      echo "stack.sh: the stack exited with status $exited when stopped" >&2
      status=1
    fi
    if grep -q "stopped unexpectedly" "$stack_data/stack.log" 2>/dev/null; then
      echo "stack.sh: a service died while the stack ran:" >&2
      grep "stopped unexpectedly" "$stack_data/stack.log" >&2
      status=1
    fi
    if [ "$status" -ne 0 ]; then
      echo "stack.sh: the stack's log:" >&2
      tail -n 100 "$stack_data/stack.log" >&2
    fi
    stack_pid=""
  fi
  if [ -n "${stack_data:-}" ]; then
    rm -rf "$stack_data"
    stack_data=""
  fi
  return "$status"
}

# For an EXIT trap: stops the stack, and exits non-zero if the script or the stack failed.
stack_exit() {
  local rc=$?
  stack_stop || rc=1
  exit "$rc"
}
