#!/usr/bin/env bash
# The whole Tessera test suite, as CI runs it: formatting, lints, every crate's tests and the
# end-to-end tests that start the real `tessera` binary. Needs only the Rust toolchain and a C
# compiler (libsecp256k1, the independent BIP340/ECDSA verifier in the tests, is built from
# its crate).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "test.sh: cargo fmt --check" >&2
cargo fmt --all -- --check
echo "test.sh: cargo clippy -D warnings" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "test.sh: cargo test" >&2
cargo test --workspace --locked
