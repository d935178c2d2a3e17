#!/usr/bin/env bash
# Distributed vs embedded throughput on one machine (docs/performance.md): one embedded
# server, then a 3-node cluster written by `tessera init-cluster`; for each scheme a fresh
# 2-of-3 key and `tessera load` against the embedded server and against node 1.
#
#   cargo build --release -p signer-service --bin tessera
#   SCHEMES="ed25519 bip340 ecdsa" CONC=1000 DUR=10s bash scripts/cluster-load.sh
#
# After each run it prints the CPU seconds the server processes had used before and after it
# (embedded: the one server; three nodes: node 1, which takes the load, then nodes 2 and 3).
# BIN names another tessera binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release/tessera}
work=$(mktemp -d)
schemes=${SCHEMES:-"ed25519 ecdsa"}
conc=${CONC:-64}
dur=${DUR:-10s}
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
pids=()
# CPU seconds (user + system) each process in $pids has used so far.
cpu_seconds() {
    for p in "${pids[@]}"; do
        awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f ", ($14 + $15) / hz }' "/proc/$p/stat"
    done
}
load() { # label server scheme
    echo "== $1 $3, concurrency $conc, $dur"
    local key before
    key=$(key_of "$2" "$3")
    before=$(cpu_seconds)
    "$bin" load --server "$2" --scheme "$3" --key-id "$key" \
        --concurrency "$conc" --duration "$dur" | grep -E '^(throughput|latency|errors)'
    echo "server CPU seconds before and after: $before-> $(cpu_seconds)"
}

"$bin" serve --data-dir "$work/embedded" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --backend auto 2>"$work/embedded.log" &
embedded=$!
pids=("$embedded")
addr=$(listening "$work/embedded.log")
for s in $schemes; do load embedded "http://$addr" "$s"; done
kill "$embedded"
wait "$embedded" 2>/dev/null || true

"$bin" init-cluster --parties 3 --out "$work/cluster" --base-port 17100 >/dev/null
pids=()
for i in 1 2 3; do
    "$bin" serve --config "$work/cluster/node-$i/tessera.toml" --backend auto \
        2>"$work/node-$i.log" &
    pids+=("$!")
done
addr=$(listening "$work/node-1.log")
for i in 2 3; do listening "$work/node-$i.log" >/dev/null; done
for s in $schemes; do load "3 nodes" "http://$addr" "$s"; done
