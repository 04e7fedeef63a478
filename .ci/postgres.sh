#!/usr/bin/env bash
# Starts a throw-away PostgreSQL 15 cluster on 127.0.0.1 for the brrd test suite and prints
#   export BRR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/brr_test
# on stdout (everything else goes to stderr). Use it as:
#   eval "$(bash .ci/postgres.sh)"        # start (or reuse the running one) and export the URL
#   bash .ci/postgres.sh stop             # stop it and delete its files
# Idempotent: a second start reuses the running cluster. Runs as root (the server itself runs as the
# `postgres` user, created if missing) or as an ordinary user.
set -euo pipefail

state=${BRR_PG_STATE:-/tmp/brr-ci-postgres}
bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then bindir=$d; break; fi
  done
fi
if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1; then bindir=$(dirname "$(command -v initdb)"); fi
if [ -z "$bindir" ]; then
  echo "postgres.sh: PostgreSQL server binaries not found; installing postgresql-15" >&2
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >&2
    bindir=/usr/lib/postgresql/15/bin
  else
    echo "postgres.sh: cannot install PostgreSQL (need root and apt-get)" >&2
    exit 1
  fi
fi

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && su -s /bin/sh postgres -c "$*")
  else
    sh -c "$*"
  fi
}

url_for() { echo "postgres://postgres@127.0.0.1:$1/brr_test"; }

if [ "${1:-start}" = stop ]; then
  if [ -f "$state/port" ]; then
    as_pg "'$bindir/pg_ctl' -D '$state/data' -m immediate stop" >&2 || true
  fi
  rm -rf "$state"
  exit 0
fi

# Reuse a running cluster.
if [ -f "$state/port" ] && "$bindir/pg_isready" -q -h 127.0.0.1 -p "$(cat "$state/port")"; then
  echo "export BRR_TEST_POSTGRES_URL=$(url_for "$(cat "$state/port")")"
  exit 0
fi

if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin postgres >&2
fi

rm -rf "$state"
mkdir -p "$state"
[ "$(id -u)" = 0 ] && chown postgres "$state"

# A free port: the first from 55432 on that nothing listens to.
port=55432
while (echo >"/dev/tcp/127.0.0.1/$port") >/dev/null 2>&1; do port=$((port + 1)); done

as_pg "'$bindir/initdb' -D '$state/data' -U postgres --auth=trust --encoding=UTF8 --no-locale" >"$state/initdb.log" 2>&1 || {
  cat "$state/initdb.log" >&2; exit 1; }
as_pg "'$bindir/pg_ctl' -D '$state/data' -l '$state/server.log' -w -t 60 \
  -o \"-c listen_addresses=127.0.0.1 -p $port -k '$state' -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off\" start" >&2 || {
  cat "$state/server.log" >&2; exit 1; }
echo "$port" >"$state/port"
"$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres brr_test >&2
echo "export BRR_TEST_POSTGRES_URL=$(url_for "$port")"
