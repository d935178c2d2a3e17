#!/usr/bin/env bash
# The whole Tessera test suite, as CI runs it: formatting, lints, every crate's tests and the
# end-to-end tests that start the real `tessera` binary. Needs the Rust toolchain, a C compiler
# (libsecp256k1, the independent BIP340/ECDSA verifier in the tests, is built from its crate)
# and a Vulkan driver for the GPU backend's tests: when none is installed, Mesa's lavapipe
# (software Vulkan, Debian `mesa-vulkan-drivers`) is installed with apt. Under CI=true the GPU
# tests fail, not skip, when no adapter is found, and so do the SIMD conformance tests of a path
# the CPU lacks. The gRPC API is linted with buf (installed from npm on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

# One-shot builds gain nothing from incremental compilation, and its caches would take several
# GB of disk on top of the build itself.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# A clean run writes about 7 GiB (measured 2026-12-06: the checkout with its test build 5.2 GiB
# including the fuzz build, the crates.io registry 0.9 GiB, npm's cache and the installed
# tools); say so up front rather than failing with "No space left on device" half an hour in.
need_gb=8
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
echo "test.sh: $((free_kb / 1024 / 1024)) GiB free on the disk of $(pwd)" >&2
if [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
    echo "test.sh: WARNING: a clean run needs about ${need_gb} GiB; the build may fail with 'No space left on device'" >&2
fi

if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
    echo "test.sh: no Vulkan driver found; installing Mesa's lavapipe (mesa-vulkan-drivers)" >&2
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    if ! { "${sudo_cmd[@]}" apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
            mesa-vulkan-drivers libvulkan1 >/dev/null; }; then
        echo "test.sh: could not install mesa-vulkan-drivers; GPU tests will skip (or fail under CI=true)" >&2
    fi
fi

if ! command -v g++ >/dev/null 2>&1; then
    # bitcoinconsensus (Bitcoin Core's script interpreter, used by the chain tests) and
    # libFuzzer compile C++.
    echo "test.sh: no g++; installing it with apt" >&2
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq g++ >/dev/null
fi

echo "test.sh: buf lint (proto/)" >&2
bash scripts/buf-lint.sh
echo "test.sh: hw/fpga-notes simulations and model tests" >&2
bash hw/fpga-notes/sim.sh && python3 -m unittest discover -s hw/fpga-notes -p 'test_*.py' || exit 1
echo "test.sh: cargo fmt --check" >&2
cargo fmt --all -- --check
echo "test.sh: cargo clippy -D warnings" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "test.sh: cargo test" >&2
cargo test --workspace --locked
echo "test.sh: mutation guard of the protocol crates (scripts/mutants-guard.sh)" >&2
bash scripts/mutants-guard.sh

# --- Fuzzing smoke run (docs/fuzzing.md) -------------------------------------------------
# Builds the cargo-fuzz targets of fuzz/ (its own workspace, not built above) and runs each for
# TESSERA_FUZZ_SECONDS seconds (default 15); a crash, panic, hang or OOM fails the suite and
# leaves its reproducer in fuzz/artifacts/<target>/. Installs g++ and cargo-fuzz when missing.
echo "test.sh: fuzz smoke run (fuzz/smoke.sh, ${TESSERA_FUZZ_SECONDS:-15}s per target)" >&2
bash fuzz/smoke.sh
