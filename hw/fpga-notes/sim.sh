#!/usr/bin/env bash
# Runs every hw/fpga-notes test bench under Icarus Verilog (installed with apt when missing):
# generates the vectors with the Rust generator `fpga-vectors` (hw/fpga-notes/vectors: the
# SIMD backend's field and point arithmetic, checked against k256 and curve25519-dalek),
# compiles each unit, issues one input per cycle and checks every output. Exits non-zero on
# any mismatch. Usage: bash hw/fpga-notes/sim.sh
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v iverilog >/dev/null 2>&1; then
    echo "sim.sh: installing iverilog with apt" >&2
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq iverilog >/dev/null
fi

B=build
mkdir -p "$B"
cargo run --quiet --locked -p fpga-vectors -- "$B" --seed "${SEED:-25519}" --nmul "${NMUL:-400}" \
    --nadd "${NADD:-128}"

fail=0
run_tb() { # name vvp vecfile
    local name=$1 vvp=$2 unit=$3 out
    out=$(vvp -n "$vvp" +VEC="$B/$unit.hex" +N="$(cat "$B/$unit.n")" +NAME="$name")
    echo "$out" | grep -v '^RESULT' | grep -v 'VCD' || true
    if ! echo "$out" | grep -q '^RESULT PASS$'; then
        echo "sim.sh: $name FAILED" >&2
        fail=1
    fi
}

iverilog -g2005 -Wimplicit -DUNIT=fmul_p25519 -o "$B/fmul_p25519.vvp" tb/tb_fmul.v rtl/mul256.v rtl/fmul_p25519.v
iverilog -g2005 -Wimplicit -DUNIT=fmul_k256 -o "$B/fmul_k256.vvp" tb/tb_fmul.v rtl/mul256.v rtl/fmul_k256.v
iverilog -g2005 -Wimplicit -o "$B/ed25519_add.vvp" tb/tb_ed25519_add.v rtl/ed25519_add.v \
    rtl/fmul_p25519.v rtl/mul256.v rtl/modarith.v
iverilog -g2005 -Wimplicit -o "$B/k256_add.vvp" tb/tb_k256_add.v rtl/k256_add.v \
    rtl/fmul_k256.v rtl/mul256.v rtl/modarith.v

run_tb fmul_p25519 "$B/fmul_p25519.vvp" fmul_p25519
run_tb fmul_k256 "$B/fmul_k256.vvp" fmul_k256
run_tb ed25519_add "$B/ed25519_add.vvp" ed25519_add
run_tb k256_add "$B/k256_add.vvp" k256_add

if [ "$fail" -ne 0 ]; then
    echo "sim.sh: FAIL" >&2
    exit 1
fi
echo "sim.sh: all test benches passed"
