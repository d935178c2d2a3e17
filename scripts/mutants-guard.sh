#!/usr/bin/env bash
# The mutation-testing regression guard of the protocol crates (docs/assurance.md, "Regression
# guard"), run by scripts/test.sh. When the source of crates/threshold or crates/dkls23 changed
# since TESSERA_MUTANTS_BASE (default: the previous commit), runs cargo-mutants on the mutants
# inside that diff (`--in-diff`) with each crate's whole test suite, and fails when one
# survives that is not a documented equivalent in .cargo/mutants-equivalent.txt. At most
# TESSERA_MUTANTS_MAX mutants (default 24) are run, a deterministic round-robin sample when the
# diff has more, to keep the suite's time bounded. Installs cargo-mutants when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

base="${TESSERA_MUTANTS_BASE:-HEAD~1}"
max="${TESSERA_MUTANTS_MAX:-24}"
version=27.1.0
crates=(crates/threshold/src crates/dkls23/src)

if ! git rev-parse --verify -q "$base^{commit}" >/dev/null 2>&1; then
    echo "mutants-guard: no commit $base to compare with (a shallow or fresh history); skipped" >&2
    exit 0
fi
out="target/mutants-guard"
mkdir -p "$out"
diff="$out/diff.patch"
git diff "$base" -- "${crates[@]}" >"$diff"
if [ ! -s "$diff" ]; then
    echo "mutants-guard: the protocol crates are unchanged since $base; nothing to test" >&2
    exit 0
fi
if [ "$(cargo mutants --version 2>/dev/null || true)" != "cargo-mutants $version" ]; then
    echo "mutants-guard: installing cargo-mutants $version" >&2
    cargo install cargo-mutants --locked --version "$version"
fi

args=(--in-diff "$diff" -p threshold -p dkls23)
total=$(cargo mutants "${args[@]}" --list | wc -l)
if [ "$total" -eq 0 ]; then
    echo "mutants-guard: the diff since $base has no mutable code" >&2
    exit 0
fi
shards=$(((total + max - 1) / max))
echo "mutants-guard: $total mutants in the diff since $base; running shard 0/$shards" >&2
status=0
cargo mutants "${args[@]}" --shard "0/$shards" --sharding round-robin --timeout 300 \
    --output "$out" || status=$?
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts, 4 when the unmutated tree
# fails its tests; only missed mutants can be documented equivalents.
if [ "$status" -ne 0 ] && [ "$status" -ne 2 ]; then
    echo "mutants-guard: cargo-mutants failed (exit $status); see $out/mutants.out" >&2
    exit 1
fi
missed="$out/mutants.out/missed.txt"
new=()
if [ -f "$missed" ]; then
    while IFS= read -r m; do
        # Documented by file, function and mutation, without line and column.
        key=$(sed -E 's/^([^:]+):[0-9]+:[0-9]+:/\1:/' <<<"$m")
        if ! grep -qxF "$key" .cargo/mutants-equivalent.txt; then
            new+=("$m")
        fi
    done <"$missed"
fi
if [ "${#new[@]}" -ne 0 ]; then
    echo "mutants-guard: mutants no test catches (add a test that kills each, or, if it is" >&2
    echo "equivalent, document it in docs/assurance.md and .cargo/mutants-equivalent.txt):" >&2
    printf '  %s\n' "${new[@]}" >&2
    exit 1
fi
echo "mutants-guard: every mutant in the sample is caught or a documented equivalent" >&2
