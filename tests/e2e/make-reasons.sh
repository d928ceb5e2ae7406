#!/usr/bin/env bash
# Produce, for real, every delay reason we can get out of the local Postfix
# without any traffic leaving 127.0.0.1, and write the distinct delay_reason
# strings (from postqueue -j) one per line.
#
# Usage: sudo tests/e2e/make-reasons.sh [OUTPUT_FILE]
#   OUTPUT_FILE  default: tests/fixtures/reasons/real-reasons.txt
# Env:   REASONS_NO_DNS=1   skip the "Host or domain name not found" case
#        REASONS_KEEP=1     keep the deferred messages (and their defer logs) in
#                           the queue instead of emptying it at the end
# Exit:  0 on success; non-zero with a message. Always leaves Postfix running,
#        with the postfix-setup.sh config and empty queues (postfix-reset.sh),
#        or, with REASONS_KEEP=1, that config and the deferred messages.
#
# How each reason is made (transport map from postfix-setup.sh, all loopback):
#   refused.test  -> [127.0.0.1]:2, closed port: "Connection refused", and for
#                    the later messages to the now-dead site "delivery
#                    temporarily suspended: ..."
#   timeout.test  -> fake-smtp.py silent: smtp_helo_timeout (5s here) expires
#   greylist.test -> fake-smtp.py answers RCPT with 450 (greylisting)
#   full.test     -> fake-smtp.py answers RCPT with 452 (mailbox full)
#   busy.test     -> fake-smtp.py greets with 421 (too many connections)
#   lost.test     -> fake-smtp.py greets, then hangs up (lost connection)
#   hangup.test   -> fake-smtp.py hangs up before greeting
#   data.test     -> fake-smtp.py answers DATA with 451
#   nohost.test   -> smtp:[nohost.invalid], a name that resolves nowhere
#   dnsa.test, dnsmx.test -> the same name through an extra smtp service with
#                    DNS lookups on (A for [name], MX for name). The
#                    smtp client runs chrooted in the queue directory (Debian's
#                    master.cf), and native lookups there read the chroot's
#                    etc/hosts and etc/resolv.conf; this script puts
#                    "nameserver 127.0.0.1" there (port 53 closed) so the only
#                    DNS query possible goes to loopback. Skipped when smtp is
#                    not chrooted or the chroot resolv.conf cannot be made
#                    loopback-only. When strace exists, every connect/sendto of
#                    the Postfix processes is traced and checked to be 127.*.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root

out=${1:-$(cd "$here/../.." && pwd)/tests/fixtures/reasons/real-reasons.txt}
mkdir -p "$(dirname "$out")"
qdir=$(pf_queue_dir)
extra_map=$PF_CONF_DIR/pfdtest-transport-reasons
chroot_resolv=$qdir/etc/resolv.conf
orig_maps=$(postconf -h transport_maps)

pids=()
strace_pid=
strace_log=$(mktemp)
resolv_backup=
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -z "$strace_pid" ] || kill "$strace_pid" 2>/dev/null || true
    postconf -X smtp_helo_timeout smtp_connect_timeout 2>/dev/null || true
    postconf -e "transport_maps = $orig_maps"
    rm -f "$extra_map"
    if [ -n "$resolv_backup" ]; then
        if [ "$resolv_backup" = none ]; then rm -f "$chroot_resolv"; else mv "$resolv_backup" "$chroot_resolv"; fi
    fi
    rm -f "$strace_log"
    if [ "${REASONS_KEEP:-0}" = 1 ]; then
        pf_unpause_all   # master.cf back to the pristine copy (drops pfddns), reloaded
        postfix reload >/dev/null 2>&1 || true
    else
        "$here/postfix-reset.sh" >/dev/null
    fi
}
trap cleanup EXIT

"$here/postfix-reset.sh" >/dev/null

# --- fake SMTP servers on loopback ------------------------------------------------
start_fake() { # start_fake <port> <mode>
    python3 "$here/fake-smtp.py" "$1" "$2" &
    pids+=($!)
    wait_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null || die "fake-smtp.py on $1 did not start"
}
start_fake 10026 silent
start_fake 10027 'rcpt:450 4.2.0 Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/greylist.test.html'
start_fake 10028 'rcpt:452 4.2.2 Mailbox full'
start_fake 10029 'banner:421 4.7.0 Too many connections, try again later'
start_fake 10030 banner-hangup
start_fake 10031 hangup
start_fake 10032 'data:451 4.3.0 Temporary local problem - please try later'

# --- the DNS case, only when it is provably loopback-only ------------------------
dns=0
if [ "${REASONS_NO_DNS:-0}" != 1 ]; then
    # Column 5 of "postconf -M smtp/unix" is the chroot flag; "-" means the
    # default chroot setting ("n" since Postfix 3.0), so only "y" is good.
    if [ "$(postconf -M smtp/unix | awk '{ print $5 }')" = y ]; then
        if [ -e "$chroot_resolv" ]; then
            resolv_backup=$(mktemp); cp -p "$chroot_resolv" "$resolv_backup"
        else
            resolv_backup=none
        fi
        mkdir -p "$qdir/etc"
        printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$chroot_resolv"
        if [ "$(grep -E '^[[:space:]]*nameserver' "$chroot_resolv" | awk '{ print $2 }' | sort -u)" = 127.0.0.1 ]; then
            dns=1
            # Native lookup (getaddrinfo) through the normal smtp transport, and
            # Postfix's own DNS client (A and MX) through an extra chrooted smtp
            # service; master.cf goes back to the pristine copy on cleanup.
            printf '%s\n' 'nohost.test smtp:[nohost.invalid]' \
                'dnsa.test pfddns:[nohost.invalid]' 'dnsmx.test pfddns:nohost.invalid' >"$extra_map"
            printf '%s\n' 'pfddns    unix  -       -       y       -       -       smtp' \
                '  -o smtp_dns_support_level=enabled -o smtp_host_lookup=dns' >>"$PF_MASTER_CF"
            postconf -e "transport_maps = $orig_maps, texthash:$extra_map"
        fi
    else
        log "smtp is not chrooted: skipping the DNS case (a lookup could leave the machine)"
    fi
fi

postconf -e smtp_helo_timeout=5s smtp_connect_timeout=5s
postfix reload >/dev/null 2>&1
sleep 1   # let master restart the daemons with the new config

if command -v strace >/dev/null 2>&1; then
    strace -f -qq -e trace=connect,sendto,sendmsg -o "$strace_log" \
        -p "$(tr -d ' ' <"$qdir/pid/master.pid")" &
    strace_pid=$!
    sleep 1
fi

# --- submit ---------------------------------------------------------------------
submit() { printf 'Subject: reasons\n\nmake-reasons.sh\n' | sendmail -f "$1" "$2"; }
domains="refused timeout greylist full busy lost hangup data"
[ "$dns" -eq 0 ] || domains="$domains nohost dnsa dnsmx"
n=0
for d in $domains; do
    # Three per domain, a second apart: the later ones can meet a site that
    # qmgr already marked dead ("delivery temporarily suspended: ...").
    for i in 1 2 3; do submit "sender$i@example.com" "user$i@$d.test"; n=$((n + 1)); done
done
submit 'a*star@example.com' 'x!y*z@example.org'; n=$((n + 1))   # via the closed relayhost
for d in refused greylist; do submit 'late@example.com' "late@$d.test"; n=$((n + 1)); done

wait_until 60 sh -c "[ \$(find $qdir/maildrop $qdir/incoming $qdir/active -type f | wc -l) -eq 0 ] && [ \$(find $qdir/deferred -type f | wc -l) -ge $n ]" \
    || die "not all $n messages were deferred: $(pf_queue_truth | tr '\n' ' ')"

if [ -n "$strace_pid" ]; then
    kill "$strace_pid" 2>/dev/null || true; wait "$strace_pid" 2>/dev/null || true; strace_pid=
    # Any inet address other than 127.x in a connect/sendto is a leak.
    if grep -oE 'sin_addr=inet_addr\("[0-9.]+"\)' "$strace_log" | grep -vq '"127\.'; then
        grep -E 'sin_addr=inet_addr\("[0-9.]+"\)' "$strace_log" | grep -v '"127\.' >&2
        die "traffic to a non-loopback address was seen (above)"
    fi
    log "strace: $(grep -c 'inet_addr' "$strace_log") inet connects/sends, all to 127.*"
fi

# --- collect ----------------------------------------------------------------------
postqueue -j | python3 -c '
import json, sys
seen = set()
for line in sys.stdin:
    for r in json.loads(line).get("recipients", []):
        if "delay_reason" in r:
            seen.add(r["delay_reason"])
print("\n".join(sorted(seen)))
' >"$out"
log "$(wc -l <"$out") distinct reasons written to $out"
cat "$out"
