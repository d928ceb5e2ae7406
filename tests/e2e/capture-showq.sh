#!/usr/bin/env bash
# Capture, byte for byte, what the real showq server sends on
# $queue_directory/public/showq (the stream postqueue -p/-j itself reads), with
# the matching "postqueue -j" output and queue truth taken at the same moment.
#
# Usage: sudo tests/e2e/capture-showq.sh [OUT_DIR]
#   OUT_DIR  default: tests/fixtures/showq next to this script's tests/ dir
# Needs: postfix-setup.sh done, socat, python3. Runs as root.
# Exit:  0 on success. Leaves Postfix running, default config
#        (enable_long_queue_ids removed again), empty queues (postfix-reset.sh).
#
# Files written (only these; FORMAT.md is hand-written and not touched):
#   empty.bin                                  empty queues
#   mixed.{bin,jsonl,truth}                    after fill-queues.sh 12 (queues frozen:
#                                              qmgr + pickup paused)
#   long-ids.{bin,jsonl,truth}                 same with enable_long_queue_ids = yes
#   many-rcpts.{bin,jsonl,truth,postcat}       one deferred message, 50 distinct
#                                              recipients in 6 domains, plus duplicates
#                                              (see below); .postcat is "postcat -q"
#                                              of it, showing the queue-file records
#   odd-addrs.{bin,jsonl,truth}                one deferred message with the null
#                                              sender <> and the recipients
#                                              "john doe"@example.com, plain@example.net
#
# Every .bin is exactly what the server sent: the client connects (as root,
# so public/'s postfix:postdrop 0710 is no obstacle), sends nothing and reads
# until EOF. Each capture is checked: the truth is the same before and after,
# and the queue IDs decoded from the .bin equal those in the .jsonl.
#
# many-rcpts is submitted over SMTP to 127.0.0.1:25 (the test Postfix's own
# smtpd, loopback only) so that duplicates reach the queue file: RCPT TO the
# same address repeated verbatim (cleanup drops those) and the same address
# with different DSN ORCPT values (cleanup keeps those, showq shows each
# address only once, per message, up to duplicate_filter_limit).
#
# A new run gives new queue IDs, sizes, times: tests must not pin them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root
command -v socat >/dev/null 2>&1 || die "socat is not installed"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"

out=${1:-$(cd "$here/../.." && pwd)/tests/fixtures/showq}
mkdir -p "$out"
qdir=$(pf_queue_dir)
sock=$qdir/public/$(postconf -h showq_service_name)
cd /

restore_config() {
    postconf -X enable_long_queue_ids 2>/dev/null || true
}
trap 'restore_config; "$here/postfix-reset.sh" >/dev/null' EXIT

# Decode a showq stream (3.7: announcement, then per message one group of
# name\0value\0 pairs closed by an empty name, then a lone NUL) and print
# the queue IDs, one a line, sorted. Strict: fails on anything unexpected, so
# a capture that is cut short or has an unknown shape is noticed here.
showq_ids() {
    python3 - "$1" <<'EOF'
import sys
data = open(sys.argv[1], 'rb').read()
parts = data.split(b'\0')
if parts[-1] != b'':
    sys.exit("stream does not end with NUL")
parts = parts[:-1]
pos = 0
def take():
    global pos
    if pos >= len(parts):
        sys.exit("truncated stream")
    pos += 1
    return parts[pos - 1]
def group():
    """name/value pairs up to the terminator (an empty name); [] for a lone NUL"""
    pairs = []
    while True:
        name = take()
        if name == b'':
            return pairs
        pairs.append((name, take()))
if group() != [(b'protocol', b'mail_queue_list_protocol')]:
    sys.exit("no protocol announcement")
head = [b'queue_name', b'queue_id', b'time', b'size', b'forced_expire', b'sender']
ids = []
while True:
    msg = group()
    if not msg:
        break                                   # lone NUL: end of stream
    if [n for n, _ in msg[:6]] != head:
        sys.exit("unexpected message attributes: %r" % msg[:6])
    rest = [n for n, _ in msg[6:]]
    if rest != [b'recipient', b'reason'] * (len(rest) // 2):
        sys.exit("unexpected recipient attributes: %r" % rest)
    ids.append(msg[1][1].decode())
if pos != len(parts):
    sys.exit("data after the end of the stream")
print("\n".join(sorted(ids)))
EOF
}

# capture <name>: showq stream + postqueue -j + truth, queues must not move.
capture() {
    local name=$1 before after
    before=$(pf_queue_truth)
    rm -f "$out/$name.bin"
    socat -u "UNIX-CONNECT:$sock" "CREATE:$out/$name.bin" || die "cannot read $sock"
    if [ "$name" != empty ]; then
        postqueue -j >"$out/$name.jsonl" 2>/tmp/pfd-showq.err || die "postqueue -j failed"
        [ ! -s /tmp/pfd-showq.err ] || die "postqueue -j wrote to stderr: $(cat /tmp/pfd-showq.err)"
        rm -f /tmp/pfd-showq.err
    fi
    after=$(pf_queue_truth)
    [ "$before" = "$after" ] || die "queues moved during the $name capture"
    [ "$name" = empty ] || echo "$after" >"$out/$name.truth"
    local bin_ids json_ids
    bin_ids=$(showq_ids "$out/$name.bin") || die "$name.bin does not decode"
    if [ "$name" = empty ]; then
        [ -z "$bin_ids" ] || die "empty.bin lists messages"
    else
        json_ids=$(python3 -c 'import sys, json; print("\n".join(sorted(json.loads(l)["queue_id"] for l in open(sys.argv[1]))))' "$out/$name.jsonl")
        [ "$bin_ids" = "$json_ids" ] || die "$name: queue IDs in .bin and .jsonl differ"
    fi
    log "$name: $(wc -c <"$out/$name.bin") bytes, $(echo "$after" | awk '$1 != "corrupt" { n += $2 } END { print n + 0 }') messages"
}

# --- empty --------------------------------------------------------------------
"$here/postfix-reset.sh" >/dev/null
capture empty

# --- mixed ----------------------------------------------------------------------
"$here/fill-queues.sh" 12 >/dev/null
capture mixed

# --- long queue IDs -------------------------------------------------------------
"$here/postfix-reset.sh" >/dev/null
postconf -e enable_long_queue_ids=yes
postfix reload >/dev/null 2>&1
"$here/fill-queues.sh" 12 >/dev/null
capture long-ids
restore_config
"$here/postfix-reset.sh" >/dev/null

# --- many recipients ------------------------------------------------------------
python3 - <<'EOF' || die "SMTP submission to 127.0.0.1:25 failed"
import smtplib
rcpts = []
# 50 distinct recipients: 10 + 10 + 10 + 10 + 5 + 5 in six domains, including
# the '*' and '!' characters the original Datadog check miscounts.
for d, n in (("example.com", 10), ("example.net", 10), ("example.org", 10),
             ("refused.test", 10), ("sub.example.com", 5), ("example.edu", 5)):
    rcpts += ["user%02d@%s" % (k, d) for k in range(1, n + 1)]
rcpts[3] = "x!y*z@example.com"
rcpts[17] = "star*bang!@example.net"
s = smtplib.SMTP("127.0.0.1", 25, local_hostname="localhost", timeout=30)
s.ehlo()
s.mail("many@example.com")
for r in rcpts:
    code, msg = s.rcpt(r)
    assert code == 250, (r, code, msg)
# Verbatim duplicates (cleanup removes these before the queue file).
for r in rcpts[:3]:
    code, msg = s.rcpt(r)
    assert code == 250, (r, code, msg)
# The same address with two different ORCPTs: both reach the queue file.
for r in ("user05@example.org", "user06@example.net", "user07@refused.test"):
    for alias in ("alias-a", "alias-b"):
        code, msg = s.rcpt(r, ["ORCPT=rfc822;%s@example.com" % alias])
        assert code == 250, (r, code, msg)
code, msg = s.data(b"Subject: many recipients\r\n\r\npostfix-dogstatsd e2e test message\r\n")
assert code == 250, (code, msg)
s.quit()
EOF
wait_until 60 sh -c "[ \$(find $qdir/maildrop $qdir/incoming $qdir/active -type f | wc -l) -eq 0 ] && [ \$(find $qdir/deferred -type f | wc -l) -eq 1 ]" \
    || die "the many-recipient message did not reach deferred: $(pf_queue_truth | tr '\n' ' ')"
pf_pause qmgr
capture many-rcpts
id=$(find "$qdir/deferred" -type f -printf '%f\n')
postcat -q "$id" >"$out/many-rcpts.postcat" 2>/dev/null || die "postcat -q $id failed"

# --- odd addresses: null sender, quoted local part with a space ----------------
"$here/postfix-reset.sh" >/dev/null
python3 - <<'EOF' || die "SMTP submission to 127.0.0.1:25 failed"
import smtplib
s = smtplib.SMTP("127.0.0.1", 25, local_hostname="localhost", timeout=30)
s.sendmail("", ['"john doe"@example.com', "plain@example.net"],
           b"Subject: null sender\r\n\r\npostfix-dogstatsd e2e test message\r\n")
s.quit()
EOF
wait_until 60 sh -c "[ \$(find $qdir/maildrop $qdir/incoming $qdir/active -type f | wc -l) -eq 0 ] && [ \$(find $qdir/deferred -type f | wc -l) -eq 1 ]" \
    || die "the null-sender message did not reach deferred: $(pf_queue_truth | tr '\n' ' ')"
pf_pause qmgr
capture odd-addrs

# The EXIT trap restores the config, un-pauses, empties the queues.
echo "showq captures written to $out"
