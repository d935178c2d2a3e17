# Helpers shared by the measurement scripts (cluster-load.sh, flood.sh, flamegraph.sh,
# many-keys.sh); they
# expect $bin, the tessera binary.

# The id of a new 2-of-3 key of a scheme: key_of SERVER SCHEME
key_of() {
    "$bin" keygen --server "$1" --scheme "$2" --threshold 2 --parties 3 |
        sed -n 's/.*"key_id":"\([^"]*\)".*/\1/p'
}

# The address of a listener a server's log announces, waiting up to 10 s for it:
# announced WHAT LOG (WHAT: "gRPC" or "metrics")
announced() {
    local addr
    for _ in $(seq 100); do
        addr=$(sed -n "s/.*$1 listening on \([0-9.:]*\).*/\1/p" "$2")
        if [ -n "$addr" ]; then echo "$addr"; return; fi
        sleep 0.1
    done
    echo "no $1 listener came up; see $2" >&2
    exit 1
}

# The gRPC address a server's log announces: listening LOG
listening() { announced gRPC "$1"; }

# The metrics address a server's log announces: metrics_listening LOG
metrics_listening() { announced metrics "$1"; }
