#!/usr/bin/env bash
# A second, real Postfix instance managed by postmulti, for the multi-instance
# end-to-end tests of postfix-dogstatsd. Nothing it holds can leave the machine.
#
# Usage (as root; run tests/e2e/postfix-setup.sh once before):
#   tests/e2e/postmulti-setup.sh              set up (idempotent) and start the
#                                             instance; prints "postmulti -l"
#   tests/e2e/postmulti-setup.sh --fill N     submit N messages to it and wait
#                                             until all N are in its deferred queue
#                                             (prints the truth afterwards)
#   tests/e2e/postmulti-setup.sh --truth      print its queue truth ("queue count"
#                                             lines, same format as queue-truth.sh)
#   tests/e2e/postmulti-setup.sh --reset      stop it, delete all its mail, start it
#   tests/e2e/postmulti-setup.sh --capture [FILE]
#                                             write "postmulti -l" output to FILE
#                                             (default tests/fixtures/postmulti/postmulti-l.txt)
# Env:   PFDTEST_USER  unprivileged user that must be able to run
#                      "postqueue -c /etc/postfix-out -j" (default pfdtest)
# Exit:  0 on success; non-zero with a message on stderr otherwise.
#
# The instance:
#   name postfix-out, group mta, config_directory /etc/postfix-out,
#   queue_directory /var/spool/postfix-out, data_directory /var/lib/postfix-out,
#   log /var/log/postfix-out.log. master_service_disable = inet: it runs no
#   smtpd (nothing listens, no port clash with the default instance's
#   127.0.0.1:25); mail is submitted with "sendmail -C /etc/postfix-out".
#   relayhost = [127.0.0.1]:2 (closed port), no DNS: every message is deferred
#   with "Connection refused" and stays in deferred (long backoff).
#   enable_long_queue_ids = yes: its queue IDs are the long form (SPEC 8.6),
#   so every test that reads it meets both forms on one host.
#
# What it changes in the DEFAULT instance (/etc/postfix/main.cf), and only that:
#   "postmulti -e init" sets multi_instance_enable = yes and
#   multi_instance_wrapper = ${command_directory}/postmulti -p --, and
#   "postmulti -e create" adds /etc/postfix-out to multi_instance_directories
#   (which is what lets a non-root user run "postqueue -c /etc/postfix-out").
#   Consequence of the wrapper: a plain "postfix start|stop|reload|status" (as
#   used by lib.sh, postfix-reset.sh, fill-queues.sh) now acts on ALL enabled
#   instances; postfix-out is started/stopped together with the default one.
#   "postfix -c /etc/postfix ..." or "postmulti -i - -p ..." acts on the
#   default instance alone. Everything postfix-setup.sh configured is left as it is.
#
# Undo: postmulti -i postfix-out -p stop; postmulti -i postfix-out -e disable;
#       postmulti -i postfix-out -e destroy  (needs empty queues);
#       postconf -X multi_instance_wrapper multi_instance_enable multi_instance_directories
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root

NAME=postfix-out
GROUP=mta
CONF=/etc/postfix-out
QDIR=/var/spool/postfix-out
DATA=/var/lib/postfix-out
LOGFILE=/var/log/postfix-out.log
CLOSED_PORT=2
TEST_USER=${PFDTEST_USER:-pfdtest}

inst_running() { postmulti -i "$NAME" -p status >/dev/null 2>&1; }
inst_listed()  { postmulti -l 2>/dev/null | awk -v n="$NAME" '$1 == n { f = 1 } END { exit !f }'; }
truth()        { "$here/queue-truth-dir.sh" "$QDIR"; }
count()        { find "$QDIR/$1" -type f 2>/dev/null | wc -l; }

inst_start() {
    inst_running && return 0
    postmulti -i "$NAME" -p start >/dev/null 2>&1 || true
    wait_until 30 inst_running || die "$NAME did not start (see $LOGFILE)"
}

inst_stop() {
    inst_running || return 0
    postmulti -i "$NAME" -p stop >/dev/null 2>&1 || true
    wait_until 30 sh -c "! postmulti -i $NAME -p status >/dev/null 2>&1" || die "$NAME did not stop"
}

setup() {
    [ -f "$PF_MASTER_PRISTINE" ] || die "default instance not set up: run postfix-setup.sh first"

    # 1. multi-instance support in the default instance.
    if [ "$(postconf -h multi_instance_enable)" != yes ] || [ -z "$(postconf -h multi_instance_wrapper)" ]; then
        postmulti -e init || die "postmulti -e init failed"
    fi

    # 2. the instance itself (create from main.cf.proto/master.cf.proto, or
    #    re-register a config directory left over from an earlier run).
    if ! inst_listed; then
        if [ -f "$CONF/main.cf" ] && [ -f "$CONF/master.cf" ]; then
            postmulti -e import -I "$NAME" -G "$GROUP" config_directory="$CONF" \
                || die "postmulti import failed"
        else
            postmulti -I "$NAME" -G "$GROUP" -e create config_directory="$CONF" \
                queue_directory="$QDIR" data_directory="$DATA" || die "postmulti create failed"
        fi
    fi
    [ "$(postconf -c "$CONF" -h queue_directory)" = "$QDIR" ] \
        || die "$CONF has queue_directory $(postconf -c "$CONF" -h queue_directory), expected $QDIR"

    # 3. its configuration: loopback only, no listener, everything deferred.
    touch "$LOGFILE"
    chown postfix:adm "$LOGFILE" 2>/dev/null || chown postfix "$LOGFILE"
    chmod 0640 "$LOGFILE"
    postconf -c "$CONF" -e \
        "compatibility_level = 3.6" \
        "myhostname = postfix-out.localdomain" \
        "myorigin = localhost" \
        "mydestination =" \
        "inet_interfaces = loopback-only" \
        "inet_protocols = ipv4" \
        "master_service_disable = inet" \
        "mynetworks = 127.0.0.0/8" \
        "smtp_dns_support_level = disabled" \
        "smtp_host_lookup = native" \
        "lmtp_host_lookup = native" \
        "relayhost = [127.0.0.1]:$CLOSED_PORT" \
        "default_transport = smtp" \
        "relay_transport = relay" \
        "maillog_file = $LOGFILE" \
        "queue_run_delay = 3600s" \
        "minimal_backoff_time = 7200s" \
        "maximal_backoff_time = 14400s" \
        "delay_warning_time = 0h" \
        "bounce_queue_lifetime = 5d" \
        "maximal_queue_lifetime = 5d" \
        "alias_maps =" \
        "alias_database =" \
        "authorized_submit_users = root" \
        "enable_long_queue_ids = yes"
    # postmulti create sets authorized_submit_users empty (no local submission
    # at all); --fill submits as root. master.cf is the stock master.cf.proto
    # from create; nothing to change there.

    # 4. check (creates missing queue subdirectories), enable, start.
    postfix -c "$CONF" check || die "postfix -c $CONF check failed"
    postmulti -i "$NAME" -e enable || die "postmulti enable failed"
    if inst_running; then
        postmulti -i "$NAME" -p reload >/dev/null 2>&1 || die "$NAME reload failed"
    else
        inst_start
    fi
    # The default instance must still run (postmulti -e init does not stop it).
    pf_running || pf_start

    # 5. a non-root user can list the queue (multi_instance_directories).
    postconf -h multi_instance_directories | tr ',' ' ' | tr -s ' ' '\n' | grep -x "$CONF" >/dev/null \
        || die "$CONF is not in multi_instance_directories"
    if id "$TEST_USER" >/dev/null 2>&1; then
        (cd / && runuser -u "$TEST_USER" -- postqueue -c "$CONF" -j >/dev/null) \
            || die "postqueue -c $CONF -j fails for $TEST_USER"
    fi

    postmulti -l
}

fill() { # fill N
    local n=$1 want i
    case "$n" in ''|*[!0-9]*) die "--fill needs a count" ;; esac
    { inst_listed && inst_running; } || die "$NAME is not set up and running: run $(basename "$0") first"
    want=$(( $(count deferred) + n ))
    local senders=("alice@example.com" "a*star@example.com" "bang!user@example.org" "bob@example.net")
    local rcpts=("carol@example.com" "dave@example.net" "x!y*z@example.org" "erin@example.com" "frank@example.net")
    for i in $(seq 1 "$n"); do
        printf 'Subject: postfix-out deferred %s\n\npostfix-dogstatsd e2e test message\n' "$i" \
            | sendmail -C "$CONF" -f "${senders[i % ${#senders[@]}]}" "${rcpts[i % ${#rcpts[@]}]}" \
            || die "sendmail -C $CONF failed"
    done
    wait_until $((30 + n / 20)) sh -c "[ \$(find $QDIR/maildrop $QDIR/incoming $QDIR/active -type f | wc -l) -eq 0 ] && [ \$(find $QDIR/deferred -type f | wc -l) -ge $want ]" \
        || die "messages did not all reach deferred in $QDIR: $(truth | tr '\n' ' ')"
    truth
}

reset() {
    inst_listed || die "$NAME is not set up: run $(basename "$0") first"
    inst_stop
    postsuper -c "$CONF" -d ALL >/dev/null 2>&1 || die "postsuper -c $CONF -d ALL failed"
    find "$QDIR/maildrop" "$QDIR/incoming" "$QDIR/active" "$QDIR/deferred" "$QDIR/hold" \
         "$QDIR/corrupt" "$QDIR/defer" "$QDIR/bounce" "$QDIR/trace" \
         -mindepth 1 -type f -delete
    inst_start
    local left
    left=$(truth | awk '{ n += $2 } END { print n + 0 }')
    [ "$left" -eq 0 ] || die "queues not empty after reset: $(truth | tr '\n' ' ')"
    echo "$NAME reset: running, all queues empty"
}

capture() { # capture [FILE]
    local f=${1:-$(cd "$here/../.." && pwd)/tests/fixtures/postmulti/postmulti-l.txt}
    mkdir -p "$(dirname "$f")"
    postmulti -l >"$f" || die "postmulti -l failed"
    cat "$f"
}

case "${1:-}" in
    '')        setup ;;
    --fill)    [ $# -eq 2 ] || die "usage: $(basename "$0") --fill N"; fill "$2" ;;
    --truth)   truth ;;
    --reset)   reset ;;
    --capture) capture "${2:-}" ;;
    *)         die "unknown argument: $1 (see the header of $0)" ;;
esac
