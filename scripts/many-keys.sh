#!/usr/bin/env bash
# Many keys (docs/performance.md, "10,000 keys"): one embedded server on a fresh data
# directory; `tessera load --keys KEYS` creates the keys and runs; then the server restarts
# over the same data and the same load runs three times (cold, warm, warm again: keys are
# drawn at random, so the first runs after a restart still load keys not yet cached). Prints
# each run's summary, the server's resident memory after it and the database's size.
#
#   cargo build --release -p signer-service --bin tessera
#   SCHEME=ecdsa KEYS=10000 DUR=15s bash scripts/many-keys.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release/tessera}
work=$(mktemp -d)
scheme=${SCHEME:-ecdsa}
keys=${KEYS:-10000}
dur=${DUR:-15s}
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
start() { # log name
    "$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
        --backend auto 2>"$work/$1" &
    pid=$!
    addr=$(listening "$work/$1")
    maddr=$(metrics_listening "$work/$1")
}
run() { # title
    echo "== $1"
    "$bin" load --server "http://$addr" --scheme "$scheme" --keys "$keys" \
        --concurrency 1000 --duration "$dur" --metrics-url "http://$maddr/metrics"
    echo "server RSS: $(ps -o rss= -p "$pid") KiB"
}

start server-1.log
run "create $keys keys, then the first run"
echo "database: $(stat -c %s "$work/data/tessera.redb") bytes, $(du -k "$work/data/tessera.redb" | cut -f1) KiB allocated"
kill "$pid"; wait "$pid" || true
start server-2.log
run "cold cache (after a restart)"
run "warm (second run)"
run "warm (third run)"
