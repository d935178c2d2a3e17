#!/usr/bin/env bash
# Synthesizes each hw/fpga-notes unit with Yosys for Xilinx UltraScale+ (synth_xilinx -family
# xcup; yosys is installed with apt when missing) and writes resources.md from yosys's `stat`.
# The field multipliers are synthesized whole; the point adders with their multipliers as black
# boxes (glue only), to which N x the multiplier's resources are added. Each yosys run is limited
# to SYNTH_TIMEOUT seconds (default 1800); a unit that runs out is reported as such.
# This is logic synthesis only: no placement, no routing, no timing. Usage: bash hw/fpga-notes/synth.sh
set -uo pipefail
cd "$(dirname "$0")"
if ! command -v yosys >/dev/null 2>&1; then
    echo "synth.sh: installing yosys with apt" >&2
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq yosys >/dev/null
fi
B=build/synth
mkdir -p "$B"
T=${SYNTH_TIMEOUT:-1800}
run() { # top extra-yosys-commands files...
    local top=$1 extra=$2; shift 2
    local start=$SECONDS
    if timeout "$T" yosys -q -l "$B/$top.log" -p "read_verilog $* ; $extra synth_xilinx -family xcup -noiopad -top $top ; tee -o $B/$top.stat stat" \
        >/dev/null 2>&1; then
        echo "$top $((SECONDS - start))" >> "$B/times"
        echo "synth.sh: $top done in $((SECONDS - start)) s" >&2
    else
        echo "$top TIMEOUT_OR_ERROR $((SECONDS - start))" >> "$B/times"
        echo "synth.sh: $top did not finish (limit ${T} s or error, see $B/$top.log)" >&2
    fi
}
: > "$B/times"
run fmul_p25519 "" rtl/mul256.v rtl/fmul_p25519.v
run fmul_k256 "" rtl/mul256.v rtl/fmul_k256.v
run ed25519_add "read_verilog -lib synth/stubs.v ;" rtl/modarith.v rtl/ed25519_add.v
run k256_add "read_verilog -lib synth/stubs.v ;" rtl/modarith.v rtl/k256_add.v
python3 synth/report.py "$B" > resources.md
cat resources.md
python3 model.py --update-readme   # keep README's generated tables in step with resources.md
