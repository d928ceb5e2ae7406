#!/usr/bin/env bash
# The cost of one collection, per method, against a real Postfix holding N deferred messages,
# side by side with the bare commands a user would run for the same answer; the daemon's
# steady-state CPU and RSS; datagrams per cycle. Prints Markdown for BENCHMARKS.md.
#
# Usage: sudo benches/cycle.sh [N...]       (default: 10000 50000; after postfix-setup.sh)
#        STEADY_SECONDS=300 sets the steady-state run (default 300; 0 skips it)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
sizes=("${@:-10000 50000}")
read -r -a sizes <<<"${sizes[*]}"
steady=${STEADY_SECONDS:-300}
cargo build --release --quiet
work=$(mktemp -d /tmp/pfdd-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"; bash tests/e2e/postfix-reset.sh >/dev/null 2>&1 || true' EXIT
cp target/release/postfix-dogstatsd "$work/"
bin=$work/postfix-dogstatsd
. "$here/benches/lib.sh"
cfg() { # name, yaml
    printf 'init_config: {postfix_user: postfix}\n%s\n' "$2" > "$work/$1.yaml"
    chmod 644 "$work/$1.yaml"
}
cfg postqueue "instances: [{method: postqueue, timeout: 600}]"
cfg showq "instances: [{method: showq, timeout: 600}]"
cfg scan "instances: [{method: scan, timeout: 600}]"
cfg find "instances: [{directory: /var/spool/postfix, queues: [incoming, active, deferred, hold, maildrop], timeout: 600}]"
queues="incoming active deferred hold maildrop"

for n in "${sizes[@]}"; do
    bash tests/e2e/bulk-fill.sh "$n" > "$work/truth"
    echo "### $n deferred messages (real Postfix 3.7, \`benches/cycle.sh $n\`)"
    echo
    echo "Truth: $(tr '\n' ' ' < "$work/truth")"
    echo
    echo "| what | wall s | CPU s | peak RSS |"
    echo "|---|---|---|---|"
    row "\`postqueue -p | wc -l\` (the Datadog check's postqueue mode)" runuser -u pfdtest -- sh -c 'postqueue -p | wc -l'
    row "\`postqueue -j > /dev/null\`" runuser -u pfdtest -- sh -c 'postqueue -j > /dev/null'
    row "postfix-dogstatsd check, method postqueue (runs postqueue -j; every metric)" runuser -u pfdtest -- "$bin" check -c "$work/postqueue.yaml"
    row "postfix-dogstatsd check, method showq (no fork; every metric)" setpriv --reuid=pfdtest --regid=pfdtest --groups=postdrop --no-new-privs "$bin" check -c "$work/showq.yaml"
    row "\`sudo -u postfix find <queue> -type f | wc -l\` x 5 (the Datadog check's find mode)" runuser -u pfdtest -- sh -c "for q in $queues; do sudo -n -u postfix /usr/bin/find /var/spool/postfix/\$q -type f | wc -l; done"
    row "postfix-dogstatsd check, method find (sudo find x 5)" runuser -u pfdtest -- "$bin" check -c "$work/find.yaml"
    row "\`find <queue> -type f | wc -l\` x 5, as postfix" runuser -u postfix -- sh -c "for q in $queues; do find /var/spool/postfix/\$q -type f | wc -l; done"
    row "postfix-dogstatsd check, method scan, as postfix (no fork; 6 queues, bytes)" setpriv --reuid=postfix --regid=postfix --clear-groups --no-new-privs "$bin" check -c "$work/scan.yaml"
    echo
    # Datagrams: what one cycle sends, batched, against one line per datagram.
    python3 - "$work" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 18999))
s.settimeout(3)
n = total = lines = 0
linebytes = 0
try:
    while True:
        d = s.recv(65536)
        n += 1
        total += len(d)
        for l in d.decode().splitlines():
            if l:
                lines += 1
                linebytes += len(l)
except socket.timeout:
    pass
# 28 bytes of IP and UDP header per datagram.
print(f"Datagrams for one cycle of method postqueue: {n} datagrams, {total + 28 * n} bytes on the wire "
      f"for {lines} lines; one line per datagram would be {lines} datagrams, {linebytes + 28 * lines} bytes "
      f"({lines / max(n, 1):.0f}x the datagrams).")
PY
    sleep 0.5
    printf 'dogstatsd: {url: "udp://127.0.0.1:18999"}\ninstances: [{method: postqueue}]\n' > "$work/send.yaml"
    chmod 644 "$work/send.yaml"
    runuser -u pfdtest -- "$bin" check --send -c "$work/send.yaml" >/dev/null || true
    wait
    echo
done

[ "$steady" -gt 0 ] || exit 0
# Steady state: 3 instances every 15 s on the small queue fill-queues.sh makes.
bash tests/e2e/postfix-reset.sh >/dev/null
queued=$(bash tests/e2e/fill-queues.sh 20 | awk '$1 != "corrupt" {n += $2} END {print n}')
printf 'init_config: {postfix_user: postfix}\ninstances:\n  - {method: postqueue}\n  - {method: showq}\n  - {method: postqueue, tags: ["copy:2"]}\n' > "$work/steady.yaml"
chmod 644 "$work/steady.yaml"
setpriv --reuid=pfdtest --regid=pfdtest --groups=postdrop "$bin" run -c "$work/steady.yaml" 2>/dev/null &
pid=$!
sleep 16
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); rss0=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
sleep "$steady"
t1=$(ticks); rss1=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status"); hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true
cpu=$(echo "scale=3; ($t1 - $t0) / $hz" | bc)
per_hour=$(echo "scale=2; $cpu * 3600 / $steady" | bc)
echo "### Steady state: 3 instances at 15 s for ${steady}s ($queued messages in the queue)"
echo
echo "| figure | value |"
echo "|---|---|"
echo "| daemon CPU (user+sys, its own, not its children's) | ${cpu} s in ${steady} s = **${per_hour} s per hour** |"
echo "| RSS | $((rss0)) KiB after the first run, $((rss1)) KiB at the end, peak $((hwm)) KiB |"
