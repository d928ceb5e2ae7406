#!/usr/bin/env bash
# Method scan (and find as root, which walks itself) against the commands a user would run for
# the same counts, side by side on one generated spool of N queue files (default 100000).
# Prints a Markdown table for BENCHMARKS.md: wall and CPU seconds, peak RSS, best of 3.
#
# Usage: sudo benches/spool.sh [N]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
n=${1:-100000}
cargo build --release --quiet
bin=$here/target/release/postfix-dogstatsd
spool=/tmp/pfdd-spool-$n
work=$(mktemp -d /tmp/pfdd-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

if [ ! -f "$spool/.complete" ]; then
    rm -rf "$spool"
    # 90% deferred (hashed one level, 16 subdirectories), the rest spread over the others.
    python3 - "$spool" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
queues = {"deferred": 0.90, "active": 0.02, "hold": 0.04, "incoming": 0.02, "maildrop": 0.02}
hexd = "0123456789ABCDEF"
for q in list(queues) + ["corrupt"]:
    os.makedirs(os.path.join(root, q), exist_ok=True)
for h in hexd:
    os.makedirs(os.path.join(root, "deferred", h), exist_ok=True)
body = b"x" * 400
i = 0
for q, share in queues.items():
    for _ in range(int(n * share)):
        name = "%010X" % i
        d = os.path.join(root, q, name[-1]) if q == "deferred" else os.path.join(root, q)
        fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT, 0o700)
        os.write(fd, body)
        os.close(fd)
        i += 1
PY
    chown -R postfix:postfix "$spool" 2>/dev/null || true
    touch "$spool/.complete"
fi
# The marker file is no queue file: keep it out of the counts.
files=$(find "$spool" -type f ! -name .complete | wc -l)

. "$here/benches/lib.sh"

cat > "$work/scan.yaml" <<YAML
instances: [{method: scan, config_directory: /etc/postfix, queue_directory: $spool, timeout: 600}]
YAML
cat > "$work/find.yaml" <<YAML
init_config: {postfix_user: postfix}
instances: [{directory: $spool, queues: [active, hold, deferred, incoming, maildrop, corrupt], timeout: 600}]
YAML
queues="active hold deferred incoming maildrop corrupt"
echo "Spool of $files queue files (\`benches/spool.sh $n\`), warm cache:"
echo
echo "| what | wall s | CPU s | peak RSS |"
echo "|---|---|---|---|"
row "\`find <queue> -type f | wc -l\` x 6 queues" sh -c "for q in $queues; do find $spool/\$q -type f | wc -l; done"
row "\`sudo -u postfix find <queue> -type f | wc -l\` x 6 (the Datadog check's way)" sh -c "for q in $queues; do sudo -n -u postfix find $spool/\$q -type f | wc -l; done"
row "postfix-dogstatsd check, method scan (counts and bytes, 6 queues)" "$bin" check -c "$work/scan.yaml"
row "postfix-dogstatsd check, method find as root (walks itself, 6 queues)" "$bin" check -c "$work/find.yaml"
