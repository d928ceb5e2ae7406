#!/usr/bin/env bash
# Commands for inside the container are single-quoted on purpose: they expand in there.
# shellcheck disable=SC2016
# The installed service under a real systemd: a fresh Debian 12 container booted with
# systemd-nspawn (tests/systemd/container.sh), Debian's Postfix logging to journald, our .deb
# installed with `apt-get install ./...deb` as a user would, and a third-party DogStatsD
# receiver (statsd from npm) on the host's 127.0.0.1:8125, the package's default target.
# Every step is asserted; any failure ends the script non-zero. Run by .ci/run, as root.
#
# Usage: tests/systemd/run.sh [DEB]      (default: the newest target/debian/*.deb)
# Env:   PFDD_CT_KEEP=1  leave the container running at the end (for a look inside)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/container.sh
. "$here/container.sh"

started=$SECONDS
fail() { echo "systemd test: FAILED: $*" >&2; exit 1; }
step() { printf -- '--- %s (%ss)\n' "$*" "$((SECONDS - started))"; }
ok() { echo "  ok: $*"; }

deb=${1:-$(find "$repo/target/debian" -name 'postfix-dogstatsd_*.deb' -printf '%T@ %p\n' 2>/dev/null | sort -n | tail -n 1 | cut -d' ' -f2- || true)}
[ -f "$deb" ] || fail "no .deb (build it with packaging/build.sh)"

# --- the receiver ----------------------------------------------------------------------------
export STATSD_PORT=8125 STATSD_MGMT_PORT=8126 STATSD_RUN_DIR=/tmp/pfd-statsd-systemd
export STATSD_KEY_SANITIZE=0
receiver_stop() { bash "$repo/tests/e2e/statsd-start.sh" --stop >/dev/null 2>&1 || true; }
cleanup() {
    local rc=$?
    if [ "$rc" != 0 ] && [ -n "$CT_PID" ]; then
        echo "--- the unit's journal, last 60 lines" >&2
        ct_sh 'journalctl -u postfix-dogstatsd --no-pager -n 60' >&2 || true
    fi
    if [ "${PFDD_CT_KEEP:-0}" = 1 ]; then
        echo "container left running: nsenter -t $CT_PID -a" >&2
    else
        ct_destroy
    fi
    receiver_stop
    exit "$rc"
}
trap cleanup EXIT

# gauges PATTERN: the receiver's postfix.* gauges whose key matches the regex PATTERN, as
# "name;tag=value;... value" lines (statsd folds DogStatsD tags into the key).
gauges() {
    bash "$repo/tests/e2e/statsd-query.sh" gauges --json | python3 -c '
import json, re, sys
for key, value in sorted(json.load(sys.stdin).items()):
    if key.startswith("postfix.") and re.search(sys.argv[1], key):
        print(key, value)' "$1"
}
forget() { # forget PATTERN: delete the matching gauges, so what comes next is from now on
    local keys
    keys=$(gauges "$1" | cut -d' ' -f1 | tr '\n' ' ')
    [ -z "$keys" ] || bash "$repo/tests/e2e/statsd-query.sh" "delgauges $keys" >/dev/null
}

# queue_sizes PHASE: "queue value" for the five queues from postfix.queue.size gauges tagged
# ct_phase:PHASE, or with no ct_phase tag at all when PHASE is empty (the packaged config).
queue_sizes() {
    bash "$repo/tests/e2e/statsd-query.sh" gauges --json | python3 -c '
import json, sys
phase = sys.argv[1]
found = {}
for key, value in json.load(sys.stdin).items():
    name, *tags = key.split(";")
    tags = dict(t.split("=", 1) for t in tags if "=" in t)
    if name == "postfix.queue.size" and tags.get("ct_phase", "") == phase:
        found[tags.get("queue")] = value
for q in ["incoming", "active", "deferred", "hold", "maildrop"]:
    print(q, found.get(q, "missing"))' "$1"
}

# expect_queues PHASE WAIT: within WAIT seconds the receiver's queue sizes for PHASE equal the
# truth, counted with find inside the container.
expect_queues() {
    local phase=$1 wait=$2 deadline=$((SECONDS + $2)) want got
    want=$(ct_queue_truth)
    until got=$(queue_sizes "$phase"); [ "$got" = "$want" ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "phase '${phase:-default}': queue sizes at the receiver after ${wait}s:
$got
truth (find in the container):
$want"
        sleep 1
    done
    ok "phase '${phase:-default}': postfix.queue.size equals the truth ($(echo "$want" | tr '\n' ' '))"
}

unit_prop() { ct_sh "systemctl show -p $1 --value postfix-dogstatsd"; }
main_pid() { unit_prop MainPID; }
nnp() { ct_sh "awk '/^NoNewPrivs:/ {print \$2}' /proc/$(main_pid)/status"; }
journal_since() { ct_sh "journalctl -u postfix-dogstatsd --no-pager -o cat --since '@$1'"; }
# journal_has T0 TEXT: the unit's journal since T0 gets a line containing TEXT within 15 s
# (journald may lag behind systemd's debug output).
journal_has() {
    local deadline=$((SECONDS + 15)) out
    # Captured first: `grep -q` in a pipe may end it early, and pipefail would call that failure.
    until out=$(journal_since "$1") && grep -qF -- "$2" <<<"$out"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}
now() { ct_sh 'date +%s.%N'; }

config() { # config YAML: write the service's config as the package does (root:group 0640)
    printf '%s\n' "$1" >"$CT_ROOT/etc/postfix-dogstatsd/config.yaml"
    ct_sh 'chgrp postfix-dogstatsd /etc/postfix-dogstatsd/config.yaml && chmod 0640 /etc/postfix-dogstatsd/config.yaml'
}
dropin() { # dropin NAME [FILE]: install FILE as drop-in NAME.conf, or remove it without FILE
    local d=$CT_ROOT/etc/systemd/system/postfix-dogstatsd.service.d
    if [ $# -eq 2 ]; then install -D -m 0644 "$2" "$d/$1.conf"; else rm -f "$d/$1.conf"; fi
    ct_sh 'systemctl daemon-reload'
}
restart() {
    ct_sh 'systemctl restart postfix-dogstatsd' || fail "systemctl restart failed"
    [ "$(unit_prop ActiveState)" = active ] || fail "not active after restart"
}
security() { ct_sh 'systemd-analyze security --no-pager postfix-dogstatsd.service' \
    | sed -n 's/^→ Overall exposure level for postfix-dogstatsd.service: \([0-9.]*\) .*/\1/p'; }
# The README states each score as "**N.N**" right after its marker; it must be what we measured.
readme_score() {
    local marker=$1 measured=$2
    grep -qF -- "$marker **$measured" "$repo/README.md" \
        || fail "README does not state '$marker **$measured': update its systemd section"
    ok "systemd-analyze security: $marker $measured (as the README says)"
}

# --- 1. the container ------------------------------------------------------------------------
step "receiver on 127.0.0.1:$STATSD_PORT (statsd, fresh)"
receiver_stop
bash "$repo/tests/e2e/statsd-start.sh" >/dev/null
step "debootstrap and boot Debian 12"
ct_create
ct_boot
step "Debian's Postfix inside, logging to the journal"
ct_install_postfix
# Five messages to a remote domain: deferred on the closed relay port; two of them held.
ct_sh 'for i in 1 2 3 4 5; do printf "Subject: ct $i\n\nbody\n" | sendmail -f sender@localhost rcpt$i@example.org; done'
ct_wait 60 '[ "$(find /var/spool/postfix/deferred -type f | wc -l)" = 5 ] && [ -z "$(find /var/spool/postfix/active /var/spool/postfix/incoming /var/spool/postfix/maildrop -type f)" ]' \
    || fail "the five messages did not settle in deferred: $(ct_queue_truth | tr '\n' ' ')"
ct_sh 'postqueue -j | sed -n 1,2p | sed -n "s/.*\"queue_id\": *\"\([0-9A-F]*\)\".*/\1/p" | postsuper -h - 2>/dev/null'
ct_wait 10 '[ "$(find /var/spool/postfix/hold -type f | wc -l)" = 2 ]' || fail "postsuper -h did not hold two messages"
echo "  queues: $(ct_queue_truth | tr '\n' ' ')"
# systemd logs every sd_notify message it gets at debug level: READY=1, RELOADING=1.
ct_sh 'systemd-analyze log-level debug'

# --- 2. install with the package's defaults --------------------------------------------------
step "apt-get install ./$(basename "$deb")"
cp "$deb" "$CT_ROOT/root/"
t0=$(now)
ct_sh "apt-get install -y -q /root/$(basename "$deb")" >"$CT_DIR/apt-deb.log" 2>&1 \
    || { tail -n 20 "$CT_DIR/apt-deb.log" >&2; fail "apt-get install of the .deb failed"; }
[ "$(unit_prop ActiveState)/$(unit_prop SubState)" = active/running ] \
    || fail "not active (running) after install: $(unit_prop ActiveState)/$(unit_prop SubState)"
[ "$(unit_prop Type)" = notify ] || fail "unit Type is $(unit_prop Type)"
pid=$(main_pid)
journal_has "$t0" "Got notification message from PID $pid (READY=1" \
    || fail "systemd never got READY=1 from the main PID $pid"
ok "active (running) through READY=1 from PID $pid"
[ "$(nnp)" = 0 ] || fail "no_new_privs is set under the main unit: sudo and setgid postqueue cannot work"
ok "NoNewPrivs: 0 under the main unit"
expect_queues "" 30

# --- 2b. the mail flow from Postfix's journal --------------------------------------------------
step "the packaged log: {source: auto} follows Postfix's journal"
journal_has "$t0" "following the mail log" || fail "the log task never started"
journal_has "$t0" 'source=the journal why="Postfix'"'"'s entries are in the journal"' \
    || fail "source auto did not choose the journal: $(journal_since "$t0" | grep -F 'following the mail log')"
journal_has "$t0" "reading the journal" || fail "journalctl never started"
ok "auto chose the journal, where Postfix's entries are"

# delivered STATUS RELAY: postfix.delivery.recipients counted at the receiver (statsd keeps
# counters: the receiver folds tags into the key).
delivered() {
    bash "$repo/tests/e2e/statsd-query.sh" counters --json | python3 -c '
import json, sys
status, relay = sys.argv[1], sys.argv[2]
print(int(sum(v for k, v in json.load(sys.stdin).items()
    if k.startswith("postfix.delivery.recipients;")
    and ";status=%s;" % status in k + ";" and ";relay=%s;" % relay in k + ";")))' "$1" "$2"
}
flow() { echo "sent/local $(delivered sent local) bounced/local $(delivered bounced local) deferred/none $(delivered deferred none)"; }
# expect_flow WANT: within 40 s (the packaged flush_interval is 10 s) the receiver's counts are
# WANT, and after one more flush still are (nothing counted twice).
expect_flow() {
    local deadline=$((SECONDS + 40)) got
    until got=$(flow); [ "$got" = "$1" ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "mail flow at the receiver: $got; wanted: $1"
        sleep 1
    done
    sleep 12
    [ "$(flow)" = "$1" ] || fail "mail flow changed after it was reached: $(flow); wanted: $1"
    ok "postfix.delivery.recipients: $1"
}
send() { # send TO...: one message each, from root (so non-delivery notices are delivered)
    local to
    for to in "$@"; do
        ct_sh "printf 'Subject: flow\n\nbody\n' | sendmail -f root@localhost $to"
    done
}
[ "$(flow)" = "sent/local 0 bounced/local 0 deferred/none 0" ] || fail "counted before any traffic: $(flow)"
# Known traffic: two delivered, one to an unknown user (bounced, and its notice delivered to
# root), one to the closed relay port (deferred).
send root@localhost root@localhost nosuchuser@localhost someone@example.org
expect_flow "sent/local 3 bounced/local 1 deferred/none 1"
# Captured first: `grep -q` in a pipe may end it early, and pipefail would call that failure.
owner=$(ct_sh 'test -s /var/lib/postfix-dogstatsd/journal-cursor && stat -c %U /var/lib/postfix-dogstatsd/journal-cursor' || true)
[ "$owner" = postfix-dogstatsd ] || fail "no journal cursor saved by the service user (owner: '$owner')"
t0=$(now)
restart
journal_has "$t0" "--after-cursor=s=" || fail "the restarted service did not resume from the cursor"
send root@localhost nosuchuser@localhost
expect_flow "sent/local 5 bounced/local 2 deferred/none 1"
ok "systemctl restart resumed from the saved cursor: nothing lost, nothing counted twice"
pid=$(main_pid)

# --- 3. reload -------------------------------------------------------------------------------
step "systemctl reload with a valid config"
config 'instances:
  - {method: postqueue, min_collection_interval: 2, tags: ["ct_phase:reload"]}'
t0=$(now)
ct_sh 'systemctl reload postfix-dogstatsd' || fail "reload of a valid config failed"
[ "$(main_pid)" = "$pid" ] || fail "reload changed the main PID"
journal_has "$t0" "Got notification message from PID $pid (RELOADING=1" \
    || fail "systemd never got RELOADING=1 from PID $pid"
out=$(journal_since "$t0")
grep -A1000 -F "from PID $pid (RELOADING=1" <<<"$out" | grep -F "from PID $pid (READY=1" >/dev/null \
    || fail "no READY=1 after RELOADING=1"
ok "RELOADING=1 then READY=1 from PID $pid"
expect_queues reload 20

step "systemctl reload with an invalid config: refused, the running one stays"
config 'instances:
  - {method: postqueu, min_collection_interval: 2}'
if out=$(ct_sh 'systemctl reload postfix-dogstatsd' 2>&1); then fail "reload of an invalid config succeeded"; fi
if [ "$(main_pid)" != "$pid" ] || [ "$(unit_prop ActiveState)" != active ]; then
    fail "the service did not survive a refused reload"
fi
journal_has "$t0" 'unknown method "postqueu" (did you mean "postqueue"?)' || fail "the refused reload did not say why"
ok "reload refused (${out%%$'\n'*}); PID $pid still running"
forget 'ct_phase=reload' 
expect_queues reload 20

# --- 4. exit 78 does not loop ----------------------------------------------------------------
step "a bad config at start: exit 78, no restart loop"
restarts=$(unit_prop NRestarts)
if ct_sh 'systemctl restart postfix-dogstatsd' 2>/dev/null; then fail "restart with a bad config succeeded"; fi
sleep 12   # RestartSec=5: two restarts would have happened by now
[ "$(unit_prop ActiveState)" = failed ] || fail "state $(unit_prop ActiveState) 12 s after a bad-config start (a restart loop?)"
[ "$(unit_prop NRestarts)" = "$restarts" ] || fail "systemd restarted a bad config ($restarts -> $(unit_prop NRestarts))"
ok "failed, $(unit_prop Result), no restart in 12 s"
ct_sh 'systemctl reset-failed postfix-dogstatsd'

# --- 5. the watchdog -------------------------------------------------------------------------
step "watchdog: a stopped daemon is killed and restarted"
printf '[Service]\nWatchdogSec=2s\n' >"$CT_DIR/watchdog.conf"
dropin watchdog "$CT_DIR/watchdog.conf"
config 'instances:
  - {method: postqueue, min_collection_interval: 2, tags: ["ct_phase:watchdog"]}'
restart
pid=$(main_pid) restarts=$(unit_prop NRestarts)
sleep 3   # fed for a while: no false alarm
[ "$(main_pid)" = "$pid" ] || fail "the watchdog fired on a running daemon"
t0=$(now)
ct_sh "kill -STOP $pid"
ct_wait 30 "[ \"\$(systemctl show -p NRestarts --value postfix-dogstatsd)\" -gt $restarts ] && systemctl is-active -q postfix-dogstatsd" \
    || fail "no restart within 30 s of SIGSTOP"
journal_has "$t0" 'Watchdog timeout' || fail "the restart was not the watchdog's"
[ "$(main_pid)" != "$pid" ] || fail "same PID after a watchdog restart"
ok "watchdog timeout, restarted as PID $(main_pid)"
expect_queues watchdog 20
dropin watchdog

# --- 6. stop with a collection in flight -----------------------------------------------------
step "systemctl stop with a collection in flight"
# A postqueue that hangs and ignores SIGTERM: what a real one does on a stuck NFS spool.
printf '#!/bin/sh\ntrap "" TERM\nsleep 300\n' >"$CT_ROOT/usr/local/bin/hung-postqueue"
chmod 755 "$CT_ROOT/usr/local/bin/hung-postqueue"
config 'commands: {postqueue: /usr/local/bin/hung-postqueue}
instances:
  - {method: postqueue, min_collection_interval: 60, timeout: 50}'
restart
ct_wait 10 'ps -eo args | grep "^/bin/sh /usr/local/bin/hung-postqueue" >/dev/null' \
    || fail "the hung postqueue never ran"
t0=$SECONDS
ct_sh 'systemctl stop postfix-dogstatsd'
took=$((SECONDS - t0))
[ "$took" -lt 5 ] || fail "systemctl stop took ${took}s with a collection in flight"
[ "$(unit_prop Result)" = success ] || fail "stop result: $(unit_prop Result)"
! ct_sh 'ps -eo args | grep "^/bin/sh /usr/local/bin/hung-postqueue" >/dev/null' || fail "the hung postqueue outlived the service"
ok "stopped in ${took}s (under 5), result success, no child left"

# --- 7. every method under the unit the README documents --------------------------------------
step "method find under the main unit (sudo inside the sandbox)"
config 'init_config: {postfix_user: postfix}
instances:
  - {method: find, directory: /var/spool/postfix, queues: [incoming, active, deferred, hold, maildrop], min_collection_interval: 2, tags: ["ct_phase:find"]}
  - {method: postqueue, min_collection_interval: 2, tags: ["ct_phase:postqueue"]}'
t0=$(now)
restart
[ "$(nnp)" = 0 ] || fail "no_new_privs set under the main unit"
expect_queues find 20
expect_queues postqueue 20
sleep 3
noise=$(ct_sh "journalctl --no-pager --since @$t0 -t sudo -t postfix/postdrop -t postfix/sendmail | grep -v '^-- No entries --$' || true")
[ -z "$noise" ] || fail "sudo left lines in the journal (or mail in the queue):
$noise"
ok "sudo ran find every 2 s and wrote nothing to the journal"
main_score=$(security)
readme_score "main unit:" "$main_score"

step "methods showq and postqueue with hardened.conf"
dropin hardened "$CT_ROOT/usr/share/postfix-dogstatsd/hardened.conf"
config 'instances:
  - {method: showq, min_collection_interval: 2, tags: ["ct_phase:showq"]}
  - {method: postqueue, min_collection_interval: 2, tags: ["ct_phase:postqueue-hardened"]}
  - {method: auto, min_collection_interval: 2, tags: ["ct_phase:auto-hardened"]}
log: {source: journal}'
restart
[ "$(nnp)" = 1 ] || fail "no_new_privs is not set with hardened.conf"
expect_queues showq 20
expect_queues postqueue-hardened 20
expect_queues auto-hardened 20
send root@localhost
expect_flow "sent/local 6 bounced/local 2 deferred/none 1"
ok "the journal source works inside the full sandbox"
readme_score "with hardened.conf:" "$(security)"

step "method scan with hardened.conf and scan.conf"
dropin scan "$CT_ROOT/usr/share/postfix-dogstatsd/scan.conf"
config 'instances:
  - {method: scan, directory: /var/spool/postfix, min_collection_interval: 2, tags: ["ct_phase:scan"]}'
restart
[ "$(nnp)" = 1 ] || fail "no_new_privs is not set with hardened.conf and scan.conf"
expect_queues scan 20
readme_score "with hardened.conf and scan.conf:" "$(security)"
dropin scan
dropin hardened

# --- 8. upgrade and purge --------------------------------------------------------------------
step "upgrade over an edited config"
config '# edited by the admin
instances:
  - {method: postqueue, min_collection_interval: 2, tags: ["ct_phase:upgrade"]}'
restart
pid=$(main_pid)
# The admin took the privileges away on purpose: an upgrade must not give them back.
ct_sh 'rm /etc/sudoers.d/postfix-dogstatsd && gpasswd -d postfix-dogstatsd postdrop >/dev/null'
ct_sh "apt-get install -y -q --reinstall /root/$(basename "$deb")" >"$CT_DIR/apt-upgrade.log" 2>&1 \
    || { tail -n 20 "$CT_DIR/apt-upgrade.log" >&2; fail "reinstalling the .deb failed"; }
grep -q '^# edited by the admin' "$CT_ROOT/etc/postfix-dogstatsd/config.yaml" || fail "the upgrade overwrote the edited config"
if [ "$(unit_prop ActiveState)" != active ] || [ "$(main_pid)" = "$pid" ]; then
    fail "the service was not restarted by the upgrade (PID $pid -> $(main_pid), $(unit_prop ActiveState))"
fi
[ ! -e "$CT_ROOT/etc/sudoers.d/postfix-dogstatsd" ] || fail "the upgrade put back the sudoers file the admin removed"
! ct_sh 'id -nG postfix-dogstatsd | grep -w postdrop >/dev/null' || fail "the upgrade put the user back in group postdrop"
ok "edit kept; removed sudoers file and postdrop membership stay removed; restarted (PID $pid -> $(main_pid))"
forget 'ct_phase=upgrade' 
expect_queues upgrade 20

step "purge"
ct_sh 'apt-get purge -y -q postfix-dogstatsd' >"$CT_DIR/apt-purge.log" 2>&1 || fail "apt-get purge failed"
left=$(ct_sh 'for p in /etc/postfix-dogstatsd /etc/default/postfix-dogstatsd /etc/sudoers.d/postfix-dogstatsd \
        /usr/share/postfix-dogstatsd /usr/bin/postfix-dogstatsd /lib/systemd/system/postfix-dogstatsd.service \
        /etc/systemd/system/multi-user.target.wants/postfix-dogstatsd.service /var/lib/postfix-dogstatsd; do
        [ -e "$p" ] && echo "$p"; done
    getent passwd postfix-dogstatsd; getent group postfix-dogstatsd
    getent group postdrop | grep postfix-dogstatsd
    systemctl list-units --all --no-legend "postfix-dogstatsd*"; true')
[ -z "$left" ] || fail "left after purge: $left"
ok "nothing left: files, user, group, unit"
step "done: the installed service works under systemd $(ct_sh 'systemctl --version | sed -n "1s/^systemd \([0-9]*\).*/\1/p"')"
