#!/usr/bin/env bash
# Side-by-side costs, in one run, of postfix-dogstatsd and the commands a user would otherwise
# run for the same answer. Prints a Markdown table for BENCHMARKS.md.
#
# Usage: benches/compare.sh [LISTING_MESSAGES] [REAL_MESSAGES]
#   LISTING_MESSAGES  messages in the generated postqueue -j listing (default 1000000)
#   REAL_MESSAGES     deferred messages put into the real test Postfix (default 2000; needs
#                     root and tests/e2e/postfix-setup.sh; 0 skips that part)
# Each row: wall seconds, CPU seconds (user+sys) and peak RSS, best of 3 runs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
listing_n=${1:-1000000}
real_n=${2:-2000}
cargo build --release --quiet
bin=$here/target/release/postfix-dogstatsd
work=$(mktemp -d /tmp/pfdd-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

. "$here/benches/lib.sh"

echo "| what | wall s | CPU s | peak RSS |"
echo "|---|---|---|---|"

# 1. A generated listing of LISTING_MESSAGES messages, printed by the fake postqueue.
mkdir -p "$work/pf" "$work/bin"
cp tests/fake-bin/postqueue tests/fake-bin/postconf "$work/bin/"
cargo bench --quiet --bench listing -- "$listing_n" "$work/pf/listing-j" > "$work/parse.txt"
echo ok > "$work/pf/mode"
cat > "$work/fake.yaml" <<YAML
commands: {postqueue: $work/bin/postqueue, postconf: $work/bin/postconf}
instances:
  - {method: postqueue, config_directory: $work/pf, timeout: 600}
YAML
size=$(stat -c %s "$work/pf/listing-j")
row "cat of a $listing_n-message \`postqueue -j\` listing ($((size / 1000000)) MB) > /dev/null" cat "$work/pf/listing-j"
row "postfix-dogstatsd check, same listing through the fake postqueue (all metrics)" "$bin" check -c "$work/fake.yaml"
sed 's/^/    /' "$work/parse.txt" > "$work/parse-indented.txt"

# 2. A real Postfix holding REAL_MESSAGES deferred messages.
if [ "$real_n" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v postqueue >/dev/null; then
    bash tests/e2e/postfix-reset.sh >/dev/null
    FILL_HOLD=0 FILL_EXPIRE=0 FILL_ACTIVE=0 FILL_INCOMING=0 FILL_MAILDROP=0 \
        bash tests/e2e/fill-queues.sh "$real_n" >/dev/null
    cat > "$work/real.yaml" <<YAML
init_config: {postfix_user: postfix}
instances:
  - {method: postqueue, config_directory: /etc/postfix}
  - {method: find, directory: /var/spool/postfix, queues: [incoming, active, deferred, hold, maildrop]}
YAML
    cat > "$work/real-pq.yaml" <<YAML
instances: [{method: postqueue, config_directory: /etc/postfix}]
YAML
    cat > "$work/real-find.yaml" <<YAML
init_config: {postfix_user: postfix}
instances: [{method: find, directory: /var/spool/postfix, queues: [incoming, active, deferred, hold, maildrop]}]
YAML
    cp "$bin" "$work/bin/"
    row "\`postqueue -j > /dev/null\`, $real_n deferred (real Postfix)" postqueue -j
    row "\`postqueue -p | wc -l\` (what the Datadog check runs)" sh -c 'postqueue -p | wc -l'
    row "postfix-dogstatsd check, method postqueue (runs postqueue -j)" "$bin" check -c "$work/real-pq.yaml"
    row "\`find <queue> -type f | wc -l\` x 5 queues, as root" sh -c 'for q in incoming active deferred hold maildrop; do find /var/spool/postfix/$q -type f | wc -l; done'
    row "postfix-dogstatsd check, method find, as root (walks itself)" "$bin" check -c "$work/real-find.yaml"
    if id pfdtest >/dev/null 2>&1; then
        row "\`sudo -u postfix find <queue> -type f | wc -l\` x 5, as pfdtest" runuser -u pfdtest -- sh -c 'for q in incoming active deferred hold maildrop; do sudo -n -u postfix /usr/bin/find /var/spool/postfix/$q -type f | wc -l; done'
        row "postfix-dogstatsd check, method find, as pfdtest (sudo find)" runuser -u pfdtest -- "$work/bin/postfix-dogstatsd" check -c "$work/real-find.yaml"
    fi
    bash tests/e2e/postfix-reset.sh >/dev/null
fi
echo
echo "Parser alone (cargo bench --bench listing -- $listing_n):"
echo
cat "$work/parse-indented.txt"
