#!/usr/bin/env bash
# Start a local cluster on this machine: a redis-server (the Debian package, installed if
# missing) and N shoal nodes on consecutive ports, one per core by default (docs/cluster.md).
# Usage: scripts/cluster.sh [N] [more `shoal serve` arguments]
#   SHOAL_PORT (default 5002): the first node's port; node i listens on SHOAL_PORT + i.
#   SHOAL_REDIS_PORT (default 6379): where the local redis-server listens (127.0.0.1 only).
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${1:-$(nproc)}
[ $# -gt 0 ] && shift
PORT=${SHOAL_PORT:-5002}
REDIS_PORT=${SHOAL_REDIS_PORT:-6379}

if ! command -v redis-server >/dev/null; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "== installing redis-server (Debian package)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

redis_dir=$(mktemp -d)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" \
    --logfile "$redis_dir/redis.log" &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; rm -rf "$redis_dir"' EXIT
for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done

echo "== redis on 127.0.0.1:$REDIS_PORT; $NODES shoal nodes on ports $PORT-$((PORT + NODES - 1))"
# Not exec: the trap stops redis once the nodes have drained and exited (Ctrl-C or SIGTERM).
scripts/serve.sh --workers "$NODES" --port "$PORT" --redis "redis://127.0.0.1:$REDIS_PORT/0" "$@" &
nodes_pid=$!
trap 'kill -TERM "$nodes_pid" 2>/dev/null' INT TERM
wait "$nodes_pid" || true
wait "$nodes_pid" 2>/dev/null || true
