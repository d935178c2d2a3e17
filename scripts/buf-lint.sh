#!/usr/bin/env bash
# Lints the gRPC API (proto/, configured by buf.yaml at the repository root) with `buf lint`.
# Exits non-zero when buf reports a finding (or cannot run).
#
# buf comes from npm (@bufbuild/buf ships the prebuilt binary for this platform as an optional
# dependency). The pinned version is installed once into a cache directory,
# ${XDG_CACHE_HOME:-$HOME/.cache}/tessera-buf/<version>, and reused afterwards; set
# TESSERA_BUF_DIR to install it elsewhere. Needs Node.js and npm (e.g. Debian `nodejs` and
# `npm`) and, for the first run, access to the npm registry. Extra arguments go to `buf lint`
# (e.g. --error-format=json).
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
cache_root="${XDG_CACHE_HOME:-${HOME:?}/.cache}/tessera-buf"
dir="${TESSERA_BUF_DIR:-$cache_root/$BUF_VERSION}"
buf="$dir/node_modules/.bin/buf"

installed_version() {
    [ -x "$buf" ] && "$buf" --version 2>/dev/null
}

if [ "$(installed_version || true)" != "$BUF_VERSION" ]; then
    for tool in node npm; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "buf-lint.sh: $tool not found; install Node.js and npm (Debian: apt-get install nodejs npm)" >&2
            exit 1
        fi
    done
    echo "buf-lint.sh: installing @bufbuild/buf@$BUF_VERSION into $dir" >&2
    mkdir -p "$(dirname "$dir")"
    # Install into a fresh directory next to the target and move it into place, so that an
    # interrupted or concurrent install never leaves a half-installed buf at $dir.
    tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    if ! npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund \
        --include=optional --loglevel=error "@bufbuild/buf@$BUF_VERSION" >/dev/null; then
        echo "buf-lint.sh: npm install @bufbuild/buf@$BUF_VERSION failed" >&2
        exit 1
    fi
    # Unless a concurrent run has just put a working install in place, replace $dir (absent,
    # or a broken or other-version install) with the new one.
    if [ "$(installed_version || true)" != "$BUF_VERSION" ]; then
        rm -rf "$dir"
        mv -T "$tmp" "$dir" 2>/dev/null || true
    fi
    got="$(installed_version || true)"
    if [ "$got" != "$BUF_VERSION" ]; then
        echo "buf-lint.sh: $buf does not run as buf $BUF_VERSION (got '${got}')" >&2
        exit 1
    fi
fi

echo "buf-lint.sh: buf lint (buf $BUF_VERSION)" >&2
"$buf" lint "$@"
