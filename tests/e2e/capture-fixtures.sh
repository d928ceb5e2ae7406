#!/usr/bin/env bash
# Regenerate tests/fixtures/{postqueue-p,postqueue-j,postconf} from the real
# local Postfix (set up by postfix-setup.sh). Every file holds exactly what
# Postfix printed; nothing is edited afterwards.
#
# Usage: sudo tests/e2e/capture-fixtures.sh [FIXTURES_DIR]
#   FIXTURES_DIR  default: tests/fixtures next to this script's tests/ dir
# Env:   PFDTEST_USER  unprivileged user for the "down"/"denied" captures (pfdtest)
# Exit:  0 on success. Leaves Postfix running, default config, empty queues.
#
# Only the files listed below are overwritten; nothing else in FIXTURES_DIR is
# touched. A new run gives new queue IDs, sizes and arrival times (and the
# uid of the test user in denied.stderr): tests must not pin those. Run
# make-reasons.sh for tests/fixtures/reasons/real-reasons.txt.
#
# Files written (stdout as .txt/.jsonl; for failing runs .stderr + .exitcode):
#   postconf/mail_version.txt                 postconf -h mail_version
#   postqueue-{p,j}/empty.*                   empty queue
#   postqueue-{p,j}/mixed.*, mixed.truth      fill-queues.sh output, qmgr+pickup paused
#   postqueue-{p,j}/long-ids.*, long-ids.truth  same with enable_long_queue_ids=yes
#   postqueue-{p,j}/down.stderr/.exitcode     as $PFDTEST_USER, Postfix stopped
#   postqueue-{p,j}/down-root.{txt,jsonl}/.stderr/.exitcode  as root, Postfix stopped
#   postqueue-{p,j}/denied.stderr/.exitcode   as $PFDTEST_USER, authorized_mailq_users = root
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root

out=${1:-$(cd "$here/../.." && pwd)/tests/fixtures}
user=${PFDTEST_USER:-pfdtest}
mkdir -p "$out/postqueue-p" "$out/postqueue-j" "$out/postconf"
cd /   # the unprivileged user must be able to stat the working directory

# capture <user> <stdout file> <stderr file> <exitcode file|-> <cmd...>: run the
# command as <user> (runuser, no shell, no PAM session noise), keep its stdout,
# stderr and exit code in those files, and echo the exit code.
capture() {
    local u=$1 o=$2 e=$3 c=$4; shift 4
    local rc=0
    if [ "$u" = root ]; then
        "$@" >"$o" 2>"$e" || rc=$?
    else
        runuser -u "$u" -- "$@" >"$o" 2>"$e" || rc=$?
    fi
    [ "$c" = - ] || echo "$rc" >"$c"
    echo "$rc"
}

both() { # both <name>: capture -p and -j as root with paused queues, + truth
    local name=$1 before after
    before=$(pf_queue_truth)
    capture root "$out/postqueue-p/$name.txt" /tmp/pfd-capture.err - postqueue -p >/dev/null
    [ ! -s /tmp/pfd-capture.err ] || die "postqueue -p wrote to stderr: $(cat /tmp/pfd-capture.err)"
    capture root "$out/postqueue-j/$name.jsonl" /tmp/pfd-capture.err - postqueue -j >/dev/null
    [ ! -s /tmp/pfd-capture.err ] || die "postqueue -j wrote to stderr: $(cat /tmp/pfd-capture.err)"
    after=$(pf_queue_truth)
    [ "$before" = "$after" ] || die "queues moved during the $name capture"
    if [ "$name" != empty ]; then
        echo "$after" >"$out/postqueue-p/$name.truth"
        cp "$out/postqueue-p/$name.truth" "$out/postqueue-j/$name.truth"
    fi
    rm -f /tmp/pfd-capture.err
}

restore_config() {
    postconf -X authorized_mailq_users enable_long_queue_ids 2>/dev/null || true
}
trap 'restore_config; "$here/postfix-reset.sh" >/dev/null' EXIT

# --- version ------------------------------------------------------------------
postconf -h mail_version >"$out/postconf/mail_version.txt"

# --- empty --------------------------------------------------------------------
"$here/postfix-reset.sh" >/dev/null
both empty

# --- mixed: deferred, hold (+forced expire), active, incoming, maildrop -------
"$here/fill-queues.sh" 12 >/dev/null
both mixed

# --- long queue IDs -------------------------------------------------------------
"$here/postfix-reset.sh" >/dev/null
postconf -e enable_long_queue_ids=yes
postfix reload >/dev/null 2>&1
"$here/fill-queues.sh" 12 >/dev/null
both long-ids
restore_config
"$here/postfix-reset.sh" >/dev/null

# --- denied: authorized_mailq_users excludes the user -----------------------------
# postqueue reads main.cf itself: no reload needed.
postconf -e authorized_mailq_users=root
capture "$user" /tmp/pfd-capture.out "$out/postqueue-p/denied.stderr" "$out/postqueue-p/denied.exitcode" postqueue -p >/dev/null
[ ! -s /tmp/pfd-capture.out ] || cp /tmp/pfd-capture.out "$out/postqueue-p/denied.txt"
capture "$user" /tmp/pfd-capture.out "$out/postqueue-j/denied.stderr" "$out/postqueue-j/denied.exitcode" postqueue -j >/dev/null
[ ! -s /tmp/pfd-capture.out ] || cp /tmp/pfd-capture.out "$out/postqueue-j/denied.jsonl"
restore_config

# --- down: Postfix stopped, one deferred message so root has something to list
FILL_HOLD=0 FILL_EXPIRE=0 FILL_ACTIVE=0 FILL_INCOMING=0 FILL_MAILDROP=0 \
    "$here/fill-queues.sh" 1 >/dev/null
pf_stop
for m in p j; do
    ext=txt; [ "$m" = p ] || ext=jsonl
    capture "$user" /tmp/pfd-capture.out "$out/postqueue-$m/down.stderr" "$out/postqueue-$m/down.exitcode" postqueue -$m >/dev/null
    [ ! -s /tmp/pfd-capture.out ] || cp /tmp/pfd-capture.out "$out/postqueue-$m/down.$ext"
    # SPEC 6: as root postqueue warns and reads the queue directly (exit 0).
    capture root "$out/postqueue-$m/down-root.$ext" "$out/postqueue-$m/down-root.stderr" "$out/postqueue-$m/down-root.exitcode" postqueue -$m >/dev/null
done
rm -f /tmp/pfd-capture.out
# The EXIT trap restores the config, un-pauses, empties the queues and starts Postfix.
echo "fixtures written to $out"
