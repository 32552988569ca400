#!/usr/bin/env bash
# A throwaway PostgreSQL for the Postgres trace-store tests (tests/store/test_postgres.py).
#
#   source .ci/postgres.sh   # start it, export RUNG_TEST_POSTGRES_URL, stop it on exit
#   bash .ci/postgres.sh     # start it and print the export line and the stop command
#
# Installs Debian's `postgresql` package when no server binaries are found (apt-get, as
# root, or through sudo), then runs initdb + pg_ctl in a temporary directory: a cluster of
# its own on 127.0.0.1 and a free port, trust auth, nothing shared with a system cluster.
# initdb refuses to run as root, so as root the cluster belongs to the `postgres` user.

_rung_pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then
        echo "$d"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    fi
}

_rung_pg_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "[postgres] installing Debian's postgresql package" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        postgresql >&2
}

_rung_pg_as_owner() {  # run a server binary as the cluster's owner
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

rung_pg_stop() {
    if [ -n "${RUNG_PG_DIR:-}" ] && [ -d "$RUNG_PG_DIR" ]; then
        _rung_pg_as_owner "$RUNG_PG_BIN/pg_ctl" -D "$RUNG_PG_DIR/data" -m fast -w stop \
            >/dev/null 2>&1 || true
        rm -rf "$RUNG_PG_DIR"
        echo "[postgres] stopped and removed $RUNG_PG_DIR" >&2
    fi
    unset RUNG_PG_DIR RUNG_TEST_POSTGRES_URL
}

rung_pg_start() {
    RUNG_PG_BIN=$(_rung_pg_bindir)
    if [ -z "$RUNG_PG_BIN" ]; then
        _rung_pg_install
        RUNG_PG_BIN=$(_rung_pg_bindir)
    fi
    if [ -z "$RUNG_PG_BIN" ]; then
        echo "[postgres] no initdb after installing postgresql" >&2
        return 1
    fi
    RUNG_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rung-pg.XXXXXX")
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$RUNG_PG_DIR"
    fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    _rung_pg_as_owner "$RUNG_PG_BIN/initdb" -D "$RUNG_PG_DIR/data" -U postgres \
        --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    _rung_pg_as_owner "$RUNG_PG_BIN/pg_ctl" -D "$RUNG_PG_DIR/data" -l "$RUNG_PG_DIR/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$RUNG_PG_DIR'" \
        start >/dev/null || { cat "$RUNG_PG_DIR/log" >&2; return 1; }
    "$RUNG_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres rung_test
    export RUNG_PG_DIR RUNG_PG_BIN
    export RUNG_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/rung_test"
    echo "[postgres] $("$RUNG_PG_BIN/postgres" --version) at $RUNG_TEST_POSTGRES_URL" \
         "(data in $RUNG_PG_DIR)" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # executed: leave it running, say how to use it
    set -euo pipefail
    rung_pg_start
    echo "export RUNG_TEST_POSTGRES_URL=$RUNG_TEST_POSTGRES_URL"
    echo "# stop: RUNG_PG_DIR=$RUNG_PG_DIR RUNG_PG_BIN=$RUNG_PG_BIN bash -c '. $0 --no-start; rung_pg_stop'"
elif [ "${1:-}" != "--no-start" ]; then  # sourced: start now, stop when the shell exits
    rung_pg_start
    trap rung_pg_stop EXIT
fi
