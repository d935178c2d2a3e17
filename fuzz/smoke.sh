#!/usr/bin/env bash
# The fuzzing smoke run of the test suite (docs/fuzzing.md): builds every cargo-fuzz target
# of fuzz/ (with AddressSanitizer), writes the seed corpora (fuzz/src/bin/seeds.rs) and runs
# each target for TESSERA_FUZZ_SECONDS seconds (default 15). Fails when a target finds a crash,
# a panic, a leak, an input that runs longer than TESSERA_FUZZ_TIMEOUT seconds (default 10) or
# one that needs more than 2 GiB; the reproducer is left in fuzz/artifacts/<target>/.
#
# The toolchain is stable Rust; cargo-fuzz passes nightly-only flags, so RUSTC_BOOTSTRAP=1.
# Installs what is missing: g++ (libfuzzer-sys builds libFuzzer) with apt, as scripts/test.sh
# installs its packages, and cargo-fuzz with `cargo install --locked`.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${TESSERA_FUZZ_SECONDS:-15}"
timeout="${TESSERA_FUZZ_TIMEOUT:-10}"
cargo_fuzz_version=0.13.2

if ! command -v g++ >/dev/null 2>&1; then
    echo "fuzz/smoke.sh: no g++; installing it with apt (libfuzzer-sys compiles libFuzzer)" >&2
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq g++ >/dev/null
fi
if [ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $cargo_fuzz_version" ]; then
    echo "fuzz/smoke.sh: installing cargo-fuzz $cargo_fuzz_version" >&2
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

export RUSTC_BOOTSTRAP=1
host="$(rustc -vV | sed -n 's/^host: //p')"

echo "fuzz/smoke.sh: building the fuzz targets and the seed generator" >&2
cargo fuzz build
"target/$host/release/seeds" corpus

failed=()
for target in $(cargo fuzz list); do
    echo "fuzz/smoke.sh: $target for ${seconds}s" >&2
    if ! cargo fuzz run "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout="$timeout" -print_final_stats=1; then
        failed+=("$target")
    fi
done
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz/smoke.sh: FAILED: ${failed[*]} (reproducers in fuzz/artifacts/; see docs/fuzzing.md)" >&2
    exit 1
fi
echo "fuzz/smoke.sh: every target ran ${seconds}s without a finding" >&2
