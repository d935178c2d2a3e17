# Helpers shared by the measurement scripts (cluster-load.sh, flood.sh, flamegraph.sh); they
# expect $bin, the tessera binary.

# The id of a new 2-of-3 key of a scheme: key_of SERVER SCHEME
key_of() {
    "$bin" keygen --server "$1" --scheme "$2" --threshold 2 --parties 3 |
        sed -n 's/.*"key_id":"\([^"]*\)".*/\1/p'
}

# The gRPC address a server's log announces, waiting up to 10 s for it: listening LOG
listening() {
    for _ in $(seq 100); do
        addr=$(sed -n 's/.*gRPC listening on \([0-9.:]*\).*/\1/p' "$1")
        if [ -n "$addr" ]; then echo "$addr"; return; fi
        sleep 0.1
    done
    echo "no server came up; see $1" >&2
    exit 1
}
