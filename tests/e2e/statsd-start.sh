#!/usr/bin/env bash
# Start (or stop) the third-party StatsD receiver for the e2e tests: the npm
# package statsd 0.9.0, which folds DogStatsD tags into its keys, on
# 127.0.0.1 only. Optionally also a socat bridge from a Unix datagram socket
# to its UDP port, because statsd cannot read a Unix socket.
#
# Usage: tests/e2e/statsd-start.sh [--socket PATH]   start (idempotent: a
#                                                      running receiver is reused)
#        tests/e2e/statsd-start.sh --stop             stop receiver and bridge
# Env:   STATSD_PORT        UDP port (default 18125)
#        STATSD_MGMT_PORT   management TCP port (default 18126)
#        STATSD_KEY_SANITIZE=0  keep keys unsanitised (see receiver/config.js)
#        STATSD_RUN_DIR     pid and log files (default /tmp/pfd-statsd)
# Exit:  0 receiver answers on the management port (and the bridge socket
#        exists); 1 failure (logs in $STATSD_RUN_DIR); 2 usage.
#
# statsd sets its process title to "statsd <config path>": look for it under
# that name (ps), not "node".
#
# What the receiver shows (checked by hand with statsd 0.9.0 on Node 20):
#   sent:  test.metric:1|g|#queue:deferred,instance:/etc/postfix   and  _sc|x|0
#   "statsd-query.sh gauges" prints util.inspect() of the gauges, e.g.
#       { 'test.metric;queue=deferred;instance=-etc-postfix': 1 }
#     i.e. key = name, then ";k=v" per tag in the order sent; the first ":" of
#     each tag becomes "=", and key sanitising turns "/" into "-" and drops
#     every character outside [A-Za-z0-9_.;=-] (STATSD_KEY_SANITIZE=0 gives
#     'test.metric;queue=deferred;instance=/etc/postfix'). Long answers wrap
#     over several lines ({\n  'k': v,\n ...\n}); use "--json" for one line.
#   "statsd-query.sh stats" prints lines "group.metric: value":
#       uptime: 3
#       messages.last_msg_seen: 1
#       messages.bad_lines_seen: 1
#       console.lastFlush: ...
#   The service check "_sc|x|0" is a bad line (counted in bad_lines_seen, and
#   logged as 'Bad line: 1 in msg "_sc|x|0"'); so is anything else statsd
#   cannot parse. "counters" also holds statsd.bad_lines_seen until a flush.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
recv=$here/receiver
port=${STATSD_PORT:-18125}
mgmt=${STATSD_MGMT_PORT:-18126}
run=${STATSD_RUN_DIR:-/tmp/pfd-statsd}
export STATSD_PORT=$port STATSD_MGMT_PORT=$mgmt

die() { echo "statsd-start.sh: $*" >&2; exit 1; }
usage() { sed -n '7,9p' "$0" >&2; exit 2; }
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"   # detached

stop_pidfile() { # stop_pidfile <file>: stop the process recorded there, if alive
    local pid
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$1"
}

socket=
case "${1:-}" in
    "") ;;
    --socket) [ $# -eq 2 ] || usage; socket=$2 ;;
    --stop)   stop_pidfile "$run/socat.pid"; stop_pidfile "$run/statsd.pid"; exit 0 ;;
    *) usage ;;
esac

mkdir -p "$run"
command -v node >/dev/null || die "node is not installed"

# Dependencies exactly as locked; --ignore-scripts: the only install script is
# the optional native syslog module, which we do not use.
if [ ! -d "$recv/node_modules/statsd" ]; then
    (cd "$recv" && npm ci --ignore-scripts --no-audit --no-fund >"$run/npm-ci.log" 2>&1) \
        || die "npm ci failed, see $run/npm-ci.log"
fi

answers() { STATSD_MGMT_PORT=$mgmt node "$here/statsd-query.js" health 2>/dev/null | grep '^health: up' >/dev/null; }

if [ -f "$run/statsd.pid" ] && kill -0 "$(cat "$run/statsd.pid")" 2>/dev/null && answers; then
    : # already running
else
    rm -f "$run/statsd.pid"
    # Something else (another receiver, a stale run) holds the port: refuse,
    # or we would happily report a receiver that is not ours.
    ! answers || die "127.0.0.1:$mgmt already answers but not from $run/statsd.pid; stop it first"
    # statsd evaluates the config file path relative to the cwd: pass it absolute.
    # setsid: own session, so the receiver outlives the caller's process group.
    (detached setsid node "$recv/node_modules/statsd/stats.js" "$recv/config.js") \
        >"$run/statsd.log" 2>&1 </dev/null &
    echo $! >"$run/statsd.pid"
    ok=0
    for _ in $(seq 1 100); do
        if answers; then ok=1; break; fi
        kill -0 "$(cat "$run/statsd.pid")" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$(cat "$run/statsd.pid")" 2>/dev/null || ok=0
    [ "$ok" -eq 1 ] || die "statsd did not answer on 127.0.0.1:$mgmt, see $run/statsd.log"
fi

if [ -n "$socket" ]; then
    command -v socat >/dev/null || die "socat is not installed"
    stop_pidfile "$run/socat.pid"
    mkdir -p "$(dirname "$socket")"
    # One datagram in, one UDP datagram out (socat keeps message boundaries
    # between datagram sockets; -b 8192 is the DogStatsD Unix-socket maximum).
    # mode=0666 so any user (e.g. pfdtest) may send; unlink-early replaces a
    # stale socket file.
    (detached setsid socat -u -b 8192 "UNIX-RECV:$socket,unlink-early,mode=0666" \
        "UDP-SENDTO:127.0.0.1:$port") >"$run/socat.log" 2>&1 </dev/null &
    echo $! >"$run/socat.pid"
    for _ in $(seq 1 50); do [ -S "$socket" ] && break; sleep 0.1; done
    [ -S "$socket" ] || die "socat did not create $socket, see $run/socat.log"
fi
echo "statsd on udp 127.0.0.1:$port, mgmt tcp 127.0.0.1:$mgmt${socket:+, unix socket $socket}"
