#!/usr/bin/env bash
# The queue on one machine: a private Redis on a loopback port, 2 workers, and the coordinator of
# an ablation; the workers stop when the table is written (their logs: .cache/l3kit/worker-logs/).
#
#   bash examples/cluster/local-queue.sh                         # the default ablation
#   bash examples/cluster/local-queue.sh --set profile=ci        # any experiment options
#
# Needs redis-server (Debian: apt-get install -y redis-server). WORKERS=3 for three workers.
set -euo pipefail
cd "$(dirname "$0")/../.."
port=${REDIS_PORT:-6399}
redis_dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$redis_dir" \
  --daemonize yes --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log"
queue="redis://127.0.0.1:$port/0"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true
  rm -rf "$redis_dir"
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
logs=${LOGS:-.cache/l3kit/worker-logs}
mkdir -p "$logs"
for i in $(seq "${WORKERS:-2}"); do
  node bin/l3kit.js worker --queue "$queue" --artifacts "${ARTIFACTS:-.cache/l3kit/artifacts}" >"$logs/worker-$i.log" 2>&1 &
  pids+=("$!")
done
npm run experiment -- ablation-fusion --queue "$queue" "$@"
