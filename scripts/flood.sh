#!/usr/bin/env bash
# Signing under a flood (docs/performance.md, "Signing under a flood"): one embedded server;
# an Ed25519 client at concurrency 16 for DUR, first alone, then while a second client floods
# the server with four concurrent 4,096-message ECDSA SignBatch calls and eight loops of
# ECDSA key generation (BATCHES and KEYGENS change the two numbers, and 0 leaves that part
# out; KEYGEN_CLIENT=load creates the keys from one client process instead of KEYGENS
# command-line loops). Prints both runs' summaries and the p99 ratio.
#
#   cargo build --release -p signer-service --bin tessera
#   FLOOD_NICE=19 DUR=30s bash scripts/flood.sh
#
# On a small noisy host, a 10 s run's unloaded p99 moves by a third from run to run; 30 s runs
# give steadier ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release/tessera}
work=$(mktemp -d)
dur=${DUR:-10s}
# FLOOD_NICE=19 runs the flooding client processes at the lowest CPU priority, standing in for
# clients on other machines: on a two-core host they otherwise take CPU from the measured
# client itself, which is not what the test is about (the server's scheduling is).
flood_nice=""
if [ -n "${FLOOD_NICE:-}" ]; then flood_nice="nice -n $FLOOD_NICE"; fi
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
p99_of() { # load summary (JSON)
    python3 -c 'import json,sys; print(json.load(sys.stdin)["latency_ms"]["p99"])'
}

"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --backend auto 2>"$work/server.log" &
server="http://$(listening "$work/server.log")"
ed=$(key_of "$server" ed25519)
ecdsa=$(key_of "$server" ecdsa)

ed_load() {
    "$bin" load --server "$server" --scheme ed25519 --key-id "$ed" --concurrency 16 \
        --duration "$dur" --json
}

echo "== Ed25519 alone, concurrency 16, $dur"
alone=$(ed_load)
echo "$alone"

echo "== Ed25519 under the flood"
flooders=()
if [ "${BATCHES:-4}" != 0 ]; then
    $flood_nice "$bin" load --server "$server" --scheme ecdsa --key-id "$ecdsa" --batch-size 4096 \
        --concurrency "${BATCHES:-4}" --duration 3600s >/dev/null 2>&1 &
    flooders+=($!)
fi
if [ "${KEYGENS:-8}" = 0 ]; then
    :
elif [ "${KEYGEN_CLIENT:-cli}" = load ]; then
    # One client process creating ECDSA keys without pause (`tessera load --keys` creates the
    # keys it lacks, several at a time, before it signs).
    $flood_nice "$bin" load --server "$server" --scheme ecdsa --keys 1000000 --concurrency 1 \
        --duration 3600s >/dev/null 2>&1 &
    flooders+=($!)
else
    # The whole loop runs at the flood's priority: the shell's own forks are flood work too.
    for _ in $(seq "${KEYGENS:-8}"); do
        $flood_nice bash -c 'while true; do "$0" keygen --server "$1" --scheme ecdsa \
            --threshold 2 --parties 3 >/dev/null 2>&1 || true; done' "$bin" "$server" &
        flooders+=($!)
    done
fi
sleep 2
flooded=$(ed_load)
echo "$flooded"
kill "${flooders[@]}" 2>/dev/null || true

a=$(p99_of <<<"$alone")
f=$(p99_of <<<"$flooded")
python3 -c "print(f'p99 alone {$a:.1f} ms, under the flood {$f:.1f} ms: ratio {$f / $a:.2f}')"
