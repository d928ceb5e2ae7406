#!/usr/bin/env bash
# Put real mail into every Postfix queue, the way mail really arrives
# (sendmail -> maildrop -> pickup -> cleanup -> incoming -> qmgr -> active ->
# smtp -> deferred), then freeze the queues so they can be compared exactly.
#
# Usage: sudo tests/e2e/fill-queues.sh [N]
#   N                 deferred messages to submit (default 30), to several
#                     domains; the relayhost is a closed loopback port, so
#                     they are all deferred with "Connection refused".
# Env (all counts, defaults in brackets):
#   FILL_HOLD [5]     of the N deferred, put this many on hold (postsuper -h)
#   FILL_EXPIRE [1]   of the deferred that stay, mark this many forced-to-expire
#                     (postsuper -e, mark '#'); one held message is marked too
#                     when FILL_EXPIRE > 0. Done with qmgr paused, so nothing
#                     bounces.
#   FILL_ACTIVE [1]   messages left in "active" (see the note below); 0 skips
#   FILL_INCOMING [2] messages left in "incoming" (submitted with qmgr paused)
#   FILL_MAILDROP [3] messages left in "maildrop" (submitted with pickup paused)
# Exit: 0 when every queue holds what was asked (the truth is printed as
#       "queue count" lines on stdout); non-zero with a message otherwise.
#
# On return qmgr and pickup are PAUSED (commented out in master.cf): nothing
# moves until postfix-reset.sh (or lib.sh's pf_unpause_all) runs. Mail already
# in the queues is kept; counts are added to it.
#
# How "active" is filled reliably: a message routed to timeout.test goes to a
# fake SMTP server on 127.0.0.1 that accepts and never answers, so the message
# sits in active while smtp waits for the greeting. qmgr is then paused: master
# stops it, and only qmgr ever moves a file out of active (on its next start
# it moves active back to incoming). When the fake server is then killed, smtp
# records "lost connection ... initial server greeting" as the delay reason and
# the file simply stays in active, with a reason, for as long as qmgr is down.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root

N=${1:-30}
HOLD=${FILL_HOLD:-5}
EXPIRE=${FILL_EXPIRE:-1}
ACTIVE=${FILL_ACTIVE:-1}
INCOMING=${FILL_INCOMING:-2}
MAILDROP=${FILL_MAILDROP:-3}
[ "$HOLD" -le "$N" ] || die "FILL_HOLD ($HOLD) > N ($N)"
[ "$EXPIRE" -le $((N - HOLD)) ] || die "FILL_EXPIRE ($EXPIRE) > N - FILL_HOLD"

qdir=$(pf_queue_dir)
pf_start
pf_unpause_all          # in case a previous run left something paused

# Senders and recipients with the characters the original check miscounts:
# '*' (active mark) and '!' (hold mark) inside addresses.
senders=("alice@example.com" "a*star@example.com" "bang!user@example.org" "bob@example.net")
rcpts=("carol@example.com" "dave@example.net" "x!y*z@example.org" "erin@example.com" "frank@example.net")

submit() { # submit <sender> <recipient> <subject>
    printf 'Subject: %s\n\npostfix-dogstatsd e2e test message\n' "$3" \
        | sendmail -f "$1" "$2" || die "sendmail failed"
}
count() { pf_queue_count "$1"; }

base_deferred=$(count deferred)
base_hold=$(count hold)
base_active=$(count active)
base_incoming=$(count incoming)
base_maildrop=$(count maildrop)

# --- 1. N deferred messages -----------------------------------------------------
for i in $(seq 1 "$N"); do
    submit "${senders[i % ${#senders[@]}]}" "${rcpts[i % ${#rcpts[@]}]}" "deferred $i"
done
want=$((base_deferred + N))
# Settled: nothing left on its way in maildrop/incoming/active, all deferred.
wait_until $((30 + N / 20)) sh -c "[ \$(find $qdir/maildrop $qdir/incoming $qdir/active -type f | wc -l) -eq 0 ] && [ \$(find $qdir/deferred -type f | wc -l) -ge $want ]" \
    || die "messages did not all reach deferred: $(pf_queue_truth | tr '\n' ' ')"

# --- 2. hold --------------------------------------------------------------------
# Queue file names are queue IDs; take the first HOLD deferred ones.
if [ "$HOLD" -gt 0 ]; then
    find "$qdir/deferred" -type f -printf '%f\n' | sort | sed -n "1,${HOLD}p" | postsuper -h - 2>/dev/null
    wait_until 10 sh -c "[ \$(find $qdir/hold -type f | wc -l) -ge $((base_hold + HOLD)) ]" \
        || die "postsuper -h did not move $HOLD messages to hold"
fi

# --- 3. active ------------------------------------------------------------------
fake_pid=
cleanup() { [ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null || true; }
trap cleanup EXIT
if [ "$ACTIVE" -gt 0 ]; then
    python3 "$here/fake-smtp.py" 10026 silent &
    fake_pid=$!
    wait_until 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/10026' 2>/dev/null || die "fake-smtp.py did not start"
    for i in $(seq 1 "$ACTIVE"); do
        submit "${senders[i % ${#senders[@]}]}" "slow$i@timeout.test" "active $i"
    done
    wait_until 30 sh -c "[ \$(find $qdir/active -type f | wc -l) -ge $((base_active + ACTIVE)) ] && [ \$(find $qdir/incoming $qdir/maildrop -type f | wc -l) -eq 0 ]" \
        || die "messages did not reach active"
fi

# --- 4. freeze: pause qmgr --------------------------------------------------------
pf_pause qmgr
if [ -n "$fake_pid" ]; then
    kill "$fake_pid"; wait "$fake_pid" 2>/dev/null || true; fake_pid=
    # Wait until smtp has written its delay reason for every active message
    # (the per-message log lives in defer/<first char>/<queue id>).
    wait_until 30 sh -c "for f in \$(find $qdir/active -type f -printf '%f\n'); do
            [ -n \"\$(find $qdir/defer -name \"\$f\" -type f)\" ] || exit 1; done" \
        || die "smtp did not record a reason for the active messages"
fi

# --- 5. forced expiry (mark '#'), now that no qmgr can bounce the message ------
if [ "$EXPIRE" -gt 0 ]; then
    find "$qdir/deferred" -type f -printf '%f\n' | sort | sed -n "1,${EXPIRE}p" | postsuper -e - 2>/dev/null
    [ "$HOLD" -eq 0 ] || find "$qdir/hold" -type f -printf '%f\n' | sort | sed -n 1p | postsuper -e - 2>/dev/null
fi

# --- 6. incoming: pickup still runs, qmgr does not --------------------------------
for i in $(seq 1 "$INCOMING"); do
    submit "${senders[i % ${#senders[@]}]}" "${rcpts[i % ${#rcpts[@]}]}" "incoming $i"
done
wait_until 30 sh -c "[ \$(find $qdir/incoming -type f -perm -u=x | wc -l) -ge $((base_incoming + INCOMING)) ] && [ \$(find $qdir/maildrop -type f | wc -l) -eq 0 ]" \
    || die "messages did not reach incoming"

# --- 7. maildrop: pause pickup too ----------------------------------------------
pf_pause pickup
for i in $(seq 1 "$MAILDROP"); do
    submit "${senders[i % ${#senders[@]}]}" "${rcpts[i % ${#rcpts[@]}]}" "maildrop $i"
done
wait_until 10 sh -c "[ \$(find $qdir/maildrop -type f | wc -l) -ge $((base_maildrop + MAILDROP)) ]" \
    || die "messages did not reach maildrop"

pf_queue_truth
