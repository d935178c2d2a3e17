#!/usr/bin/env bash
# Where a Sign request's time goes (docs/performance.md, "Where the time goes"): one embedded
# server (or, with CLUSTER=1, node 1 of three) under `tessera load`, sampled with perf
# (cpu-clock, DWARF call graphs), rendered as an SVG flame graph with inferno. Needs perf (Debian linux-perf) and inferno (`cargo install
# inferno --locked`).
#
#   cargo build --release -p signer-service --bin tessera
#   SCHEME=ed25519 CONC=64 OUT=docs/img/sign-ed25519-c64.svg bash scripts/flamegraph.sh
#   CLUSTER=1 OUT=docs/img/sign-ed25519-c64-node1.svg bash scripts/flamegraph.sh  (3 nodes)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release/tessera}
scheme=${SCHEME:-ed25519}
conc=${CONC:-64}
secs=${SECS:-10}
out=${OUT:-docs/img/sign-$scheme-c$conc.svg}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

if [ -n "${CLUSTER:-}" ]; then
    # Three nodes from init-cluster; node 1 takes the load and is the one sampled.
    "$bin" init-cluster --parties 3 --out "$work/cluster" --base-port 17300 >/dev/null
    for i in 3 2 1; do
        "$bin" serve --config "$work/cluster/node-$i/tessera.toml" --backend auto \
            2>"$work/node-$i.log" &
    done
    server_pid=$!
    ln -sf "$work/node-1.log" "$work/server.log"
else
    "$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
        --backend auto 2>"$work/server.log" &
    server_pid=$!
fi
addr=$(listening "$work/server.log")
key=$(key_of "http://$addr" "$scheme")
"$bin" load --server "http://$addr" --scheme "$scheme" --key-id "$key" --concurrency "$conc" \
    --duration "$((secs + 4))s" >"$work/load.txt" &
load_pid=$!
sleep 2
perf record -e cpu-clock -F 497 --call-graph dwarf,32768 -p "$server_pid" -o "$work/perf.data" \
    -- sleep "$secs" 2>/dev/null
wait "$load_pid" 2>/dev/null || true
grep -E '^(throughput|latency)' "$work/load.txt" >&2 || true
mkdir -p "$(dirname "$out")"
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/stacks.txt"
inferno-flamegraph --title "tessera serve${CLUSTER:+ (node 1 of 3)}, $scheme Sign at concurrency $conc (perf cpu-clock)" \
    --minwidth 0.5 <"$work/stacks.txt" >"$out"
echo "wrote $out" >&2
# Samples by what they were doing: each stack counts for the first category (in this order)
# one of its frames belongs to.
python3 - "$work/stacks.txt" <<'PY'
import sys
cats = [
    ("curve and protocol work", ("curve25519", "backend_simd", "backend_cpu", "k256::", "threshold::", "dkls23::", "accel_api::", "sha2::")),
    ("key store and audit log", ("redb::", "store_redb::", "service_core::audit")),
    ("gRPC, HTTP/2, protobuf", ("tonic::", "h2::", "hyper::", "prost::", "api_grpc::", "tower::")),
    ("metrics and tracing", ("prometheus", "telemetry::", "tracing")),
    ("use cases and batcher", ("service_core::",)),
    ("async runtime", ("tokio::",)),
]
totals = {name: 0 for name, _ in cats}
other = 0
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    n = int(n)
    for name, needles in cats:
        if any(x in stack for x in needles):
            totals[name] += n
            break
    else:
        other += n
all_ = sum(totals.values()) + other
for name, n in list(totals.items()) + [("other (kernel, allocator, threads)", other)]:
    print(f"{name:40s} {100 * n / all_:5.1f} %")
print(f"{'server CPU sampled':40s} {all_ / 1e9:.1f} s")
PY
