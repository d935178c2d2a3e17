#!/usr/bin/env bash
# Distributed vs embedded throughput on one machine (docs/performance.md): one embedded
# server, then a 3-node cluster written by `tessera init-cluster`; for each scheme a fresh
# 2-of-3 key and `tessera load` against the embedded server and against node 1.
#
#   cargo build --release -p signer-service --bin tessera
#   SCHEMES="ed25519 bip340 ecdsa" CONC=1000 DUR=10s bash scripts/cluster-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/tessera
work=$(mktemp -d)
schemes=${SCHEMES:-"ed25519 ecdsa"}
conc=${CONC:-64}
dur=${DUR:-10s}
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
load() { # label server scheme
    echo "== $1 $3, concurrency $conc, $dur"
    "$bin" load --server "$2" --scheme "$3" --key-id "$(key_of "$2" "$3")" \
        --concurrency "$conc" --duration "$dur" | grep -E '^(throughput|latency|errors)'
}

"$bin" serve --data-dir "$work/embedded" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --backend auto 2>"$work/embedded.log" &
embedded=$!
addr=$(listening "$work/embedded.log")
for s in $schemes; do load embedded "http://$addr" "$s"; done
kill "$embedded"
wait "$embedded" 2>/dev/null || true

"$bin" init-cluster --parties 3 --out "$work/cluster" --base-port 17100 >/dev/null
for i in 1 2 3; do
    "$bin" serve --config "$work/cluster/node-$i/tessera.toml" --backend auto \
        2>"$work/node-$i.log" &
done
addr=$(listening "$work/node-1.log")
for i in 2 3; do listening "$work/node-$i.log" >/dev/null; done
for s in $schemes; do load "3 nodes" "http://$addr" "$s"; done
