# shellcheck shell=bash
# Shared helpers for the real-Postfix end-to-end scripts in tests/e2e/.
# Sourced, never executed. Everything here acts on the local Postfix in
# /etc/postfix and must run as root.

PF_CONF_DIR=/etc/postfix
PF_MASTER_CF=$PF_CONF_DIR/master.cf
# Pristine copy of master.cf, taken once by postfix-setup.sh. Pausing a service
# edits master.cf; un-pausing restores this copy, so a crashed test run can
# never leave qmgr/pickup commented out for good.
PF_MASTER_PRISTINE=$PF_CONF_DIR/master.cf.pfdtest-pristine
# Where every queue lives (Debian: /var/spool/postfix).
PF_QUEUES="maildrop incoming active deferred hold corrupt"

die() { echo "$(basename "$0"): error: $*" >&2; exit 1; }
log() { echo "$(basename "$0"): $*" >&2; }

# detached <command...>: become the command, with no descriptor of ours but stdio. Call it in
# a subshell, `(detached cmd) </dev/null >log 2>&1 &`: a daemon left running must not hold a
# caller's pipe or lock open (a flock taken around the tests, held by a daemon that inherited
# it, would be held forever).
detached() {
    local fd
    for fd in /proc/self/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] && eval "exec $fd>&-"
    done
    exec "$@"
}

require_root() { [ "$(id -u)" -eq 0 ] || die "must run as root"; }

pf_queue_dir() { postconf -h queue_directory; }

pf_running() { postfix status >/dev/null 2>&1; }

# wait_until <seconds> <command...>: poll once every 0.2 s until the command
# succeeds; fail (return 1) after the deadline. Every wait in these scripts is
# bounded so a broken Postfix makes the script fail loudly instead of hanging.
wait_until() {
    local secs=$1; shift
    local deadline=$((SECONDS + secs))
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

pf_start() {
    if pf_running; then
        return 0
    fi
    postfix start >/dev/null 2>&1 || true   # "already running" is not an error for us
    wait_until 30 pf_running || die "postfix did not come up (see /var/log/postfix.log)"
}

pf_stop() {
    if pf_running; then
        postfix stop >/dev/null 2>&1 || true
    fi
    # postfix stop returns before master has exited; wait for it.
    wait_until 30 sh -c '! postfix status >/dev/null 2>&1' || die "postfix did not stop"
}

# Number of files in one queue, counted the way the Datadog check and our
# daemon count them (recursively: deferred/ is hashed).
pf_queue_count() { find "$(pf_queue_dir)/$1" -type f 2>/dev/null | wc -l; }

# Print the truth for every queue as "queue count" lines.
pf_queue_truth() {
    local q
    for q in $PF_QUEUES; do
        echo "$q $(pf_queue_count "$q")"
    done
}

# pf_pause <service>...: comment out the master.cf entries of the named
# services (and their indented "-o" continuation lines) and reload, so master
# stops those daemons. With qmgr gone nothing moves between queues any more;
# with pickup gone new submissions stay in maildrop (SPEC section 6).
pf_pause() {
    [ -f "$PF_MASTER_PRISTINE" ] || die "$PF_MASTER_PRISTINE missing: run postfix-setup.sh first"
    local svc tmp
    for svc in "$@"; do
        tmp=$(mktemp "$PF_MASTER_CF.XXXXXX")
        awk -v svc="$svc" '
            # A service entry starts in column 0; continuation lines start with
            # white space and belong to the entry above them.
            /^[^#[:space:]]/ { inside = ($1 == svc) }
            /^#/             { inside = 0 }
            inside           { print "#pfdtest-paused# " $0; next }
                             { print }
        ' "$PF_MASTER_CF" >"$tmp"
        chmod 0644 "$tmp"
        mv "$tmp" "$PF_MASTER_CF"
    done
    postfix reload >/dev/null 2>&1 || die "postfix reload failed"
    # master signals the removed daemons; wait until they are really gone so
    # callers can rely on "nothing moves any more".
    for svc in "$@"; do
        wait_until 30 pf_no_process "$svc" || die "$svc still running after pause"
    done
}

# True when no Postfix daemon process called <name> (e.g. qmgr) exists.
# Postfix daemons show up as "<name> -l -t unix -u" (no path), so match the
# command name exactly; pgrep is not assumed to be installed.
# Only children of THIS instance's master count (its pid is in
# pid/master.pid): a second instance (postmulti-setup.sh) runs its own qmgr
# and pickup. Without a readable master.pid any such process counts.
pf_no_process() {
    local p comm master stat rest
    master=$(tr -dc '0-9' <"$(pf_queue_dir)/pid/master.pid" 2>/dev/null) || master=
    for p in /proc/[0-9]*; do
        comm=$(cat "$p/comm" 2>/dev/null) || continue
        [ "$comm" = "$1" ] || continue
        if [ -n "$master" ]; then
            stat=$(cat "$p/stat" 2>/dev/null) || continue
            rest=${stat##*) }                   # "<state> <ppid> ..."
            rest=${rest#* }
            [ "${rest%% *}" = "$master" ] || continue
        fi
        return 1
    done
    return 0
}

# Restore master.cf from the pristine copy (un-pauses everything) and reload
# if Postfix runs.
pf_unpause_all() {
    [ -f "$PF_MASTER_PRISTINE" ] || die "$PF_MASTER_PRISTINE missing: run postfix-setup.sh first"
    if ! cmp -s "$PF_MASTER_PRISTINE" "$PF_MASTER_CF"; then
        cp -p "$PF_MASTER_PRISTINE" "$PF_MASTER_CF"
        if pf_running; then
            postfix reload >/dev/null 2>&1 || die "postfix reload failed"
        fi
    fi
}
