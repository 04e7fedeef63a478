#!/usr/bin/env bash
# Start a single-node Garage S3 server on 127.0.0.1 for the brr-storage S3 conformance test.
#
# Usage:
#   eval "$(bash .ci/s3.sh)"        # install if needed, start (or reuse) the server, export BRR_TEST_S3_*
#   bash .ci/s3.sh stop             # stop the server this script started and delete its data
#
# stdout carries only `export …` lines; progress and logs go to stderr. Idempotent: a server started
# earlier by this script that still answers is reused (same bucket and key); otherwise a fresh one starts
# with a new data folder. Runs on a bare machine as root; needs cargo (the first run builds Garage from
# crates.io into the cache root, about 12-15 minutes on 2 cores; later runs skip the build).
#
# Environment (all optional):
#   BRR_CI_CACHE       cache root for the garage binary      (default: $HOME/.cache/brr-ci)
#   BRR_S3_STATE       folder for config, data, log and pid  (default: /tmp/brr-ci-garage)
#   BRR_S3_PORT        S3 API port; rpc = +1, admin = +3     (default: 3900, moves up if busy)
set -euo pipefail

GARAGE_VERSION=2.5.0
CACHE_ROOT="${BRR_CI_CACHE:-$HOME/.cache/brr-ci}"
GARAGE="$CACHE_ROOT/bin/garage"
STATE="${BRR_S3_STATE:-/tmp/brr-ci-garage}"
BUCKET=brr-test
KEY_NAME=brr-test-key
REGION=garage

log() { echo "s3.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The pid in the state folder, if it is alive and is our garage server.
running_pid() {
    [[ -f "$STATE/pid" ]] || return 1
    local pid
    pid=$(cat "$STATE/pid")
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$STATE/garage.toml" || return 1
    echo "$pid"
}

stop_server() {
    local pid
    if pid=$(running_pid); then
        log "stopping garage (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$STATE"
}

if [[ "${1:-}" == "stop" ]]; then
    stop_server
    exit 0
fi

# Reuse a healthy server from an earlier run.
if pid=$(running_pid) && [[ -f "$STATE/env" ]]; then
    # shellcheck disable=SC1091
    port=$(sed -n 's/^S3_PORT=//p' "$STATE/env")
    if [[ -n "$port" ]] && port_in_use "$port"; then
        log "reusing garage (pid $pid) on 127.0.0.1:$port"
        grep '^export ' "$STATE/env"
        exit 0
    fi
fi
stop_server

# 1. The binary, at the pinned version.
# `garage --version` prints e.g. "garage cargo:2.5.0 [features: ...]".
if [[ ! -x "$GARAGE" ]] || ! "$GARAGE" --version 2>/dev/null | grep -qE "(^|[^0-9.])${GARAGE_VERSION//./\\.}([^0-9.]|\$)"; then
    command -v cargo >/dev/null || die "cargo is needed to build garage $GARAGE_VERSION"
    log "building garage $GARAGE_VERSION into $CACHE_ROOT (takes 12-15 minutes on 2 cores) ..."
    start=$(date +%s)
    nice -n 10 cargo install garage --version "$GARAGE_VERSION" --locked --root "$CACHE_ROOT" >&2
    log "garage built in $(($(date +%s) - start)) s"
fi

# 2. Ports: three consecutive free ones.
port="${BRR_S3_PORT:-3900}"
for _ in $(seq 20); do
    if ! port_in_use "$port" && ! port_in_use $((port + 1)) && ! port_in_use $((port + 3)); then
        break
    fi
    port=$((port + 10))
done
port_in_use "$port" && die "no free ports found near ${BRR_S3_PORT:-3900}"

# 3. Config and start.
mkdir -p "$STATE/meta" "$STATE/data"
chmod 700 "$STATE"
hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
cat >"$STATE/garage.toml" <<EOF
metadata_dir = "$STATE/meta"
data_dir = "$STATE/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$((port + 1))"
rpc_public_addr = "127.0.0.1:$((port + 1))"
rpc_secret = "$(hex 32)"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$((port + 3))"
admin_token = "$(hex 24)"
EOF
chmod 600 "$STATE/garage.toml"
g() { "$GARAGE" -c "$STATE/garage.toml" "$@"; }

log "starting garage on 127.0.0.1:$port (data in $STATE)"
setsid nohup "$GARAGE" -c "$STATE/garage.toml" server >"$STATE/garage.log" 2>&1 </dev/null &
echo $! >"$STATE/pid"

for i in $(seq 100); do
    g status >/dev/null 2>&1 && break
    [[ $i == 100 ]] && { tail -20 "$STATE/garage.log" >&2; die "garage did not start"; }
    sleep 0.2
done

# 4. Layout, bucket, key.
node_id=$(g node id -q 2>/dev/null | cut -d@ -f1)
[[ -n "$node_id" ]] || die "could not read the garage node id"
g layout assign -z dc1 -c 1G "$node_id" >&2
g layout apply --version 1 >&2
g bucket create "$BUCKET" >&2
key_id="GK$(hex 12)"
secret=$(hex 32)
g key import --yes -n "$KEY_NAME" "$key_id" "$secret" >&2
g bucket allow --read --write --owner "$BUCKET" --key "$KEY_NAME" >&2

for i in $(seq 50); do
    port_in_use "$port" && break
    [[ $i == 50 ]] && die "the S3 API does not listen on 127.0.0.1:$port"
    sleep 0.2
done

cat >"$STATE/env" <<EOF
S3_PORT=$port
export BRR_TEST_S3_ENDPOINT=http://127.0.0.1:$port
export BRR_TEST_S3_BUCKET=$BUCKET
export BRR_TEST_S3_REGION=$REGION
export BRR_TEST_S3_ACCESS_KEY=$key_id
export BRR_TEST_S3_SECRET_KEY=$secret
EOF
chmod 600 "$STATE/env"
log "garage ready: bucket $BUCKET, key $key_id (stop with: bash .ci/s3.sh stop)"
grep '^export ' "$STATE/env"
