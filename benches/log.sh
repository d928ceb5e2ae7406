#!/usr/bin/env bash
# The log wing side by side, in one run, on one generated real-shaped mail log: grep (the
# floor), pflogsumm (what admins run today), our parser and counters alone (cargo bench
# logparse), and the daemon reading the same file. Then the steady state: the daemon following
# a log written at a fixed rate. Prints Markdown for BENCHMARKS.md.
#
# Usage: benches/log.sh [LINES]
#   LINES  lines in the generated log (default 1000000)
# Env:   STEADY_SECONDS (default 300; 0 skips the steady state), STEADY_RATE (lines/s, 2000)
# Needs: pflogsumm (apt-get install pflogsumm; installed here when run as root).
# Each row of the table: wall seconds, CPU seconds (user+sys) and peak RSS, best of 3 runs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
lines=${1:-1000000}
steady=${STEADY_SECONDS:-300}
rate=${STEADY_RATE:-2000}
command -v pflogsumm >/dev/null || apt-get install -y -qq pflogsumm >/dev/null
cargo build --release --quiet
bin=$here/target/release/postfix-dogstatsd
bench=$(cargo bench --bench logparse --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*logparse[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bench" ] || { echo "cannot find the logparse bench executable" >&2; exit 1; }
work=$(mktemp -d /tmp/pfdd-logbench.XXXXXX)
chmod 755 "$work"
daemon_pid=""
trap '[ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null; rm -rf "$work"' EXIT

. "$here/benches/lib.sh"

log=$work/mail.log
"$bench" generate "$lines" "$log" > "$work/generated"
size=$(stat -c %s "$log")
hz=$(getconf CLK_TCK)

# The daemon: a config following FILE through a fake postqueue instance that lists an empty
# queue once an hour, sending to a loopback port nobody listens on (the sends are dropped).
daemon_config() { # daemon_config NAME FILE START_AT FLUSH_INTERVAL
    local dir=$work/$1
    rm -rf "$dir"; mkdir -p "$dir/pf" "$dir/bin"
    cp tests/fake-bin/postqueue tests/fake-bin/postconf "$dir/bin/"
    : > "$dir/pf/listing-j"; echo ok > "$dir/pf/mode"
    cat > "$dir/config.yaml" <<YAML
dogstatsd: {url: "udp://127.0.0.1:18125"}
commands: {postqueue: $dir/bin/postqueue, postconf: $dir/bin/postconf}
init_config: {postqueue: true}
instances: [{config_directory: $dir/pf, min_collection_interval: 3600}]
log: {source: file, path: $2, state_directory: $dir/state, start_at: $3, flush_interval: $4}
YAML
    chmod 644 "$dir/config.yaml"
    echo "$dir"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# The offset the daemon saved, after the flush that counted the lines before it was sent.
saved_offset() { sed -n 's/.*"offset":\([0-9]*\).*/\1/p' "$1/state/log-position.json" 2>/dev/null || true; }

# The daemon from its start until the position it saved is the end of FILE (every line
# counted, sent and saved): "wall cpu rss_kib", best of 3 by wall time.
daemon_whole_file() {
    local best="" dir start pid wall cpu rss
    for _ in 1 2 3; do
        dir=$(daemon_config whole "$log" beginning 1)
        start=$(date +%s.%N)
        "$bin" run -c "$dir/config.yaml" 2>"$dir/daemon.log" &
        pid=$!; daemon_pid=$pid
        until [ "$(saved_offset "$dir")" = "$size" ]; do sleep 0.05; done
        wall=$(echo "$(date +%s.%N) - $start" | bc)
        cpu=$(echo "scale=2; $(ticks "$pid") / $hz" | bc)
        rss=$(status_kib "$pid" VmHWM)
        kill -TERM "$pid"; wait "$pid" || true; daemon_pid=""
        if [ -z "$best" ] || [ "$(echo "$wall < ${best%% *}" | bc)" = 1 ]; then
            best="$(printf '%.2f' "$wall") $cpu $rss"
        fi
    done
    echo "$best"
}

# a / b to SCALE decimals, or - when b is 0 (under the timer's resolution).
div() { if [ "$(echo "$2 == 0" | bc)" = 1 ]; then echo -; else echo "scale=$3; $1 / $2" | bc; fi; }

mib=$((size / 1000000))
labels=(
    "\`grep -c 'status=' mail.log\` (the floor: finds the status lines, understands nothing)"
    "\`pflogsumm mail.log\` (Debian's pflogsumm $(dpkg-query -W -f '${Version}' pflogsumm 2>/dev/null || echo '?'))"
    "our parser and counters alone: \`logparse parse mail.log\` (the daemon's read loop, a flush per 64 MiB)"
    "postfix-dogstatsd run, \`start_at: beginning\`, \`flush_interval: 1\`, until its saved position is the file's end (wall paced: 64 MiB per 1 s flush)"
)
# GNU grep stops at the first match when its output is /dev/null (as measure's is): its count
# goes to a file instead.
results=(
    "$(measure sh -c 'grep -c status= "$1" > "$2"' grep "$log" "$work/grep.out")"
    "$(measure pflogsumm "$log")"
    "$(measure "$bench" parse "$log")"
    "$(daemon_whole_file)"
)
echo "### Side by side: $lines lines ($mib MB)"
echo
echo "The log (\`logparse generate\`), lines of each kind:"
echo
tail -n +2 "$work/generated" | sed 's/^/    /'
echo
echo "| what | wall s | CPU s | peak RSS | lines/s (wall) | lines per CPU second |"
echo "|---|---|---|---|---|---|"
for i in 0 1 2 3; do
    read -r wall cpu rss <<< "${results[$i]}"
    per_wall=$(div "$lines" "$wall" 0)
    per_cpu=$(div "$lines" "$cpu" 0)
    printf '| %s | %s | %.2f | %s MiB | %s | %s |\n' "${labels[$i]}" "$wall" "$cpu" "$((rss / 1024))" "$per_wall" "$per_cpu"
done
read -r g_wall g_cpu _ <<< "${results[0]}"
read -r p_wall p_cpu _ <<< "${results[1]}"
read -r o_wall o_cpu _ <<< "${results[2]}"
echo
echo "Ours against grep: $(div "$o_wall" "$g_wall" 1)x its wall time, $(div "$o_cpu" "$g_cpu" 1)x its CPU."
echo "Ours against pflogsumm: $(div "$p_wall" "$o_wall" 1)x faster in wall time, $(div "$p_cpu" "$o_cpu" 1)x less CPU."
echo
echo "Our parser alone (\`cargo bench --bench logparse -- parse mail.log\`, one more run):"
echo
"$bench" parse "$log" | sed 's/^/    /'
echo
echo "What each counted:"
echo
echo "    grep -c 'status=':  $(grep -c 'status=' "$log") status lines"
pflogsumm "$log" 2>/dev/null | sed -n '/^Grand Totals/,/^Per-Hour/p' |
    awk '$1 ~ /^[0-9]+$/ && ($2 == "received" || $2 == "delivered" || $2 == "deferred" || $2 == "bounced" || $2 == "rejected" || $2 == "held")' |
    sed 's/^ */    pflogsumm: /'

[ "$steady" -gt 0 ] || exit 0
# Steady state: the daemon follows a log that a writer appends to at RATE lines/s for
# STEADY_SECONDS; its own CPU (user+sys, /proc/PID/stat) from the writer's start until the
# position it saved is the end of what was written.
echo
echo "### Steady state: $rate lines/s for ${steady} s, default flush_interval (10 s)"
echo
follow=$work/follow.log
: > "$follow"
dir=$(daemon_config steady "$follow" end 10)
"$bin" run -c "$dir/config.yaml" 2>"$dir/daemon.log" &
pid=$!; daemon_pid=$pid
sleep 12   # started, the queue instance collected once, the first flush done
t0=$(ticks "$pid"); rss0=$(status_kib "$pid" VmRSS); start=$(date +%s.%N)
"$bench" write "$follow" "$rate" "$steady" >/dev/null
written=$(stat -c %s "$follow")
until [ "$(saved_offset "$dir")" = "$written" ]; do sleep 0.1; done
t1=$(ticks "$pid"); end=$(date +%s.%N)
rss1=$(status_kib "$pid" VmRSS); hwm=$(status_kib "$pid" VmHWM)
kill -TERM "$pid"; wait "$pid" || true; daemon_pid=""
window=$(echo "$end - $start" | bc)
cpu=$(echo "scale=3; ($t1 - $t0) / $hz" | bc)
pct=$(echo "scale=3; 100 * $cpu / $window" | bc)
echo "| figure | value |"
echo "|---|---|"
echo "| lines written and counted | $(wc -l < "$follow") ($((written / 1000000)) MB) |"
printf '| daemon CPU (user+sys) | %s s in %.1f s = **%s%% of one core** (%s s per hour) |\n' \
    "$cpu" "$window" "$pct" "$(echo "scale=1; $cpu * 3600 / $window" | bc)"
echo "| RSS | $rss0 KiB at the start, $rss1 KiB at the end, peak $hwm KiB |"
