#!/usr/bin/env bash
# pgtmp.sh: start and stop a throwaway PostgreSQL server for tests and the demo.
#
#   tests/lib/pgtmp.sh start DIR   initdb in DIR, start on a free loopback port,
#                                  create database "webform", print its libpq URI
#   tests/lib/pgtmp.sh stop DIR    stop the server started in DIR (DIR is kept)
#   tests/lib/pgtmp.sh restart DIR stop and start again on the same port
#
# Never runs the server as root: PostgreSQL refuses that, and tests must not
# need it. When invoked as root the server runs as the "postgres" system user
# (created by Debian's postgresql package), which owns DIR.
set -euo pipefail

die() { echo "pgtmp: $*" >&2; exit 1; }

bindir=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && bindir=$d; done
[ -n "$bindir" ] || die "no PostgreSQL server found (apt-get install postgresql, or run setup/install-deps.sh)"

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# try_start DIR: starts the server on the port in DIR/port; returns 2 when
# that port was taken meanwhile (see start), 1 on any other failure.
try_start() {
    local dir=$1 port datadir logged
    port=$(cat "$dir/port"); datadir=$(cat "$dir/datadir")
    logged=$(stat -c %s "$datadir/server.log" 2>/dev/null || echo 0)
    as_owner "$bindir/pg_ctl" -D "$datadir/data" -l "$datadir/server.log" -w -t 30 \
        -o "-h 127.0.0.1 -p $port -k $datadir -c fsync=off -c full_page_writes=off" start >/dev/null 2>"$dir/pg_ctl.err" && return 0
    # Only this attempt's lines of the log count.
    tail -c +$((logged + 1)) "$datadir/server.log" | grep -q "could not bind IPv4 address.*Address already in use" \
        && return 2
    return 1
}

start_server() {
    try_start "$1" || { cat "$1/pg_ctl.err" "$(cat "$1/datadir")/server.log" >&2; die "server in $1 did not start"; }
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: pgtmp.sh start|stop|restart DIR"

case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # The server's own files live where the server's user can reach them: a
    # root-owned temp dir (mode 0700) is not traversable by "postgres".
    datadir=$dir
    if [ "$(id -u)" = 0 ]; then
        datadir=$(mktemp -d /tmp/wf2jsm-pg.XXXXXX)
        chown postgres: "$datadir"
    fi
    echo "$datadir" >"$dir/datadir"
    as_owner "$bindir/initdb" -D "$datadir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed in $dir"; }
    # free_port's port is free when it answers, not necessarily when the
    # server binds it: another process (test runs start several servers at
    # once) may take it in between. The server then fails to bind, and a
    # new free port is chosen; any other failure stops here.
    for attempt in 1 2 3 4 5; do
        free_port >"$dir/port"
        rc=0; try_start "$dir" || rc=$?
        [ "$rc" = 2 ] && [ "$attempt" -lt 5 ] && continue
        [ "$rc" = 0 ] || { cat "$dir/pg_ctl.err" "$datadir/server.log" >&2; die "server in $dir did not start"; }
        break
    done
    port=$(cat "$dir/port")
    "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres webform
    echo "postgresql://postgres@127.0.0.1:$port/webform"
    ;;
stop)
    datadir=$(cat "$dir/datadir")
    as_owner "$bindir/pg_ctl" -D "$datadir/data" -m fast -w stop >/dev/null 2>&1 || true
    if [ "$datadir" != "$dir" ]; then rm -rf "$datadir"; fi
    ;;
restart)
    as_owner "$bindir/pg_ctl" -D "$(cat "$dir/datadir")/data" -m fast -w stop >/dev/null 2>&1 || true
    start_server "$dir"
    ;;
*) die "unknown command '$cmd' (start, stop or restart)";;
esac
