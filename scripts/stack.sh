# Sourced by test scripts: starts the local stack binary on free ports with a fresh data folder
# (`stack_start`, which sets $router, $users, $beers and $orders to the ports and waits until the
# router answers) and stops it again (`stack_stop`). Build the binary first:
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

stack_stop() {
  if [ -n "${stack_pid:-}" ]; then
    kill -TERM "$stack_pid" 2>/dev/null || true
    wait "$stack_pid" 2>/dev/null || true
    stack_pid=""
  fi
  if [ -n "${stack_data:-}" ]; then
    rm -rf "$stack_data"
    stack_data=""
  fi
}
