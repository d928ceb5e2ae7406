#!/usr/bin/env bash
# Method scan's memory per queued message and per recipient: the daemon's RSS after its cycles
# over a spool of N copies of a real queue file (tests/fixtures/qfiles) with its defer log,
# against an empty spool. No Postfix is needed: the spool is made in a scratch directory
# (`directory:` given, so nothing forks). Prints Markdown for BENCHMARKS.md.
#
# Usage: benches/qfile-memory.sh [N] [RECIPIENTS]   (default 1000000 messages; 10 recipients,
#        each in a domain of its own, for the second spool of N/10 messages)
# Needs about 9 GB of disk for a million messages (two files each).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
n=${1:-1000000}
rcpts=${2:-10}
cargo build --release --quiet
work=$(mktemp -d /var/tmp/pfdd-qfile-mem.XXXXXX)
trap 'rm -rf "$work"' EXIT
bin=$here/target/release/postfix-dogstatsd

# make_spool DIR COUNT RECIPIENTS: COUNT queue files in deferred/<c>/ (hashed, names unique
# upper-case hex IDs) each with a defer log; RECIPIENTS 0 copies the captured file as it is.
make_spool() {
    python3 - "$1" "$2" "$3" "$here/tests/fixtures/qfiles/mixed" <<'PY'
import os, sys
spool, count, rcpts, fixtures = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for q in ("active", "hold", "deferred", "incoming", "maildrop", "corrupt", "defer"):
    os.makedirs(os.path.join(spool, q), exist_ok=True)
def record(kind, data):
    n, out = len(data), bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes([kind]) + bytes(out) + data
if rcpts == 0:
    qf = open(os.path.join(fixtures, "files/deferred/8/816CEB8348"), "rb").read()
    log = open(os.path.join(fixtures, "files/defer/8/816CEB8348"), "rb").read()
else:
    addrs = [b"user%d@d%d.example" % (i, i) for i in range(rcpts)]
    head = record(ord("T"), b"1796151718 0") + record(ord("S"), b"alice@example.com")
    head += b"".join(record(ord("R"), a) for a in addrs) + record(ord("M"), b"")
    body = record(ord("N"), b"Subject: x") + record(ord("N"), b"") + record(ord("N"), b"body")
    at = 97 + len(head)
    c = b"%15d %15d %15d %15d %15d %15d" % (len(body), at, rcpts, 0, len(body), 0)
    qf = record(ord("C"), c) + head + body + record(ord("X"), b"") + record(ord("E"), b"")
    log = b"".join(b"\nrecipient=%s\nreason=connect to d.example[192.0.2.1]:25: Connection refused\n\n" % a for a in addrs)
for i in range(count):
    name = "%010X" % (i + 1)
    for kind, data in (("deferred", qf), ("defer", log)):
        d = os.path.join(spool, kind, name[0])
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(data)
        if kind == "deferred":
            os.chmod(p, 0o700)
PY
}

# rss DIR: the daemon's VmRSS (KiB) after three cycles over DIR, its peak, and its CPU.
rss() {
    printf 'instances:\n  - {method: scan, directory: %s, min_collection_interval: 20, timeout: 600}\n' "$1" >"$work/c.yaml"
    "$bin" run -c "$work/c.yaml" --log-level debug 2>"$work/log" &
    local pid=$! waited=0
    # Three cycles: the first reads every file, the two after only list.
    local cycles=0
    while [ "$cycles" -lt 3 ] && [ "$waited" -lt 1200 ]; do
        sleep 1; waited=$((waited + 1))
        cycles=$(grep -c collected "$work/log" 2>/dev/null || true)
        cycles=${cycles:-0}
    done
    echo "$(awk '/VmRSS/ {print $2}' /proc/$pid/status) $(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
    kill -TERM "$pid"; wait "$pid" || true
}

make_spool "$work/empty" 0 0
read -r base base_hwm < <(rss "$work/empty")
make_spool "$work/one" "$n" 0
read -r one one_hwm < <(rss "$work/one")
rm -rf "$work/one"
m=$((n / 10))
make_spool "$work/many" "$m" "$rcpts"
read -r many many_hwm < <(rss "$work/many")
per_msg=$(( (one - base) * 1024 / n ))
per_many=$(( (many - base) * 1024 / m ))
echo "| spool (\`benches/qfile-memory.sh $n $rcpts\`) | RSS after 3 cycles | peak RSS | bytes per message |"
echo "|---|---|---|---|"
echo "| empty | $((base / 1024)) MiB | $((base_hwm / 1024)) MiB | |"
echo "| $n messages, 1 recipient each | $((one / 1024)) MiB | $((one_hwm / 1024)) MiB | $per_msg |"
echo "| $m messages, $rcpts recipients each in $rcpts domains | $((many / 1024)) MiB | $((many_hwm / 1024)) MiB | $per_many, so $(( (per_many - per_msg) / (rcpts - 1) )) per further recipient |"
