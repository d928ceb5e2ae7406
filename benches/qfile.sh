#!/usr/bin/env bash
# Method scan against method showq and `find | wc -l`, side by side in one run, on a real
# Postfix holding N deferred messages (tests/e2e/bulk-fill.sh). CPU is counted for every
# process that takes part, Postfix's included, from /proc: the command or daemon with all its
# children, plus Postfix's master and every process under it (showq, qmgr, ...), those that
# exited counted through master. Other work on the host is left out (a shared CI host runs
# other jobs: its idle noise was a third of a core, more than a steady cycle costs).
#   first cycle:  `check` (one cold collection, process start and postconf included) with
#                 scan, with showq; the least of three
#   steady state: a daemon collecting every INTERVAL seconds, CPU per cycle over the cycles
#                 that end within WINDOW seconds after its first two
#   find:         `find <queue> -type f | wc -l` over the same five queues, as postfix
# Prints Markdown for BENCHMARKS.md.
#
# Usage: sudo benches/qfile.sh [N...]     (default: 10000 50000 200000; after postfix-setup.sh;
#        hold /tmp/pfd-postfix.lock around it on a shared host)
# Env:   INTERVAL (default 5), WINDOW (default 60)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
sizes=("${@:-10000 50000 200000}")
read -r -a sizes <<<"${sizes[*]}"
interval=${INTERVAL:-5}
window=${WINDOW:-60}
cargo build --release --quiet
work=$(mktemp -d /tmp/pfdd-bench.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"; bash tests/e2e/postfix-reset.sh >/dev/null 2>&1 || true' EXIT
cp target/release/postfix-dogstatsd "$work/"
bin=$work/postfix-dogstatsd
hz=$(getconf CLK_TCK)
queues="incoming active deferred hold maildrop"

# Ticks of CPU of Postfix: master and its children, living and reaped.
postfix_ticks() {
    local master
    master=$(tr -dc '0-9' </var/spool/postfix/pid/master.pid)
    awk -v m="$master" '
        FNR == 1 {
            line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
            # f[2] ppid; f[12] utime, f[13] stime, f[14] cutime, f[15] cstime
            pid = FILENAME; sub(/\/proc\//, "", pid); sub(/\/stat/, "", pid)
            if (pid == m) t += f[12] + f[13] + f[14] + f[15]
            else if (f[2] == m) t += f[12] + f[13]
        }
        END { print t + 0 }' /proc/[0-9]*/stat 2>/dev/null
}
secs() { echo "scale=4; $1 / $hz" | bc; }
# cpu CMD...: ticks of one run of CMD with its children, plus Postfix's; the least of three.
cpu() {
    local best=
    for _ in 1 2 3; do
        local p0 p1 own
        p0=$(postfix_ticks)
        own=$(bash -c '"$@" >/dev/null 2>&1; read -r -a f < <(sed "s/^.*) //" /proc/$$/stat); echo $(( f[13] + f[14] ))' _ "$@")
        p1=$(postfix_ticks)
        local t=$((own + p1 - p0))
        if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    echo "$best"
}
# steady YAML AS...: ticks per cycle of a daemon collecting every INTERVAL (back to back when a
# cycle takes longer), its own and its children's, plus Postfix's.
steady() {
    local yaml=$1; shift
    printf '%s\n' "$yaml" >"$work/steady.yaml"
    chmod 644 "$work/steady.yaml"
    "$@" "$bin" run -c "$work/steady.yaml" --log-level debug 2>"$work/steady.log" &
    local pid=$!
    collected() { grep -c 'collected' "$work/steady.log" || true; }
    daemon() { sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13 + $14 + $15}'; }
    until [ "$(collected)" -ge 2 ]; do sleep 0.2; done
    local c0 c1 d0 d1 p0 p1
    c0=$(collected); d0=$(daemon); p0=$(postfix_ticks)
    sleep "$window"
    until [ "$(collected)" -gt "$c0" ]; do sleep 0.2; done
    c1=$(collected); d1=$(daemon); p1=$(postfix_ticks)
    kill -TERM "$pid"; wait "$pid" || true
    echo "scale=2; ($d1 - $d0 + $p1 - $p0) / ($c1 - $c0)" | bc
}
cfg() { printf 'init_config: {postfix_user: postfix}\ninstances: [{method: %s, timeout: 600, min_collection_interval: %s}]\n' "$1" "$interval"; }
as_postfix=(setpriv --reuid=postfix --regid=postfix --clear-groups --no-new-privs)
as_postdrop=(setpriv --reuid=pfdtest --regid=pfdtest --groups=postdrop --no-new-privs)

for n in "${sizes[@]}"; do
    bash tests/e2e/bulk-fill.sh "$n" >"$work/truth"
    bash tests/e2e/postfix-pause.sh qmgr pickup
    cfg scan >"$work/scan.yaml"; cfg showq >"$work/showq.yaml"
    chmod 644 "$work"/*.yaml
    find_t=$(cpu runuser -u postfix -- sh -c "for q in $queues; do find /var/spool/postfix/\$q -type f | wc -l; done")
    scan_first=$(cpu "${as_postfix[@]}" "$bin" check -c "$work/scan.yaml")
    "${as_postfix[@]}" "$bin" check -c "$work/scan.yaml" >"$work/first.txt" 2>&1 || true
    showq_first=$(cpu "${as_postdrop[@]}" "$bin" check -c "$work/showq.yaml")
    scan_steady=$(steady "$(cat "$work/scan.yaml")" "${as_postfix[@]}")
    showq_steady=$(steady "$(cat "$work/showq.yaml")" "${as_postdrop[@]}")
    echo "### $n deferred messages (real Postfix $(postconf -h mail_version), \`benches/qfile.sh $n\`)"
    echo
    echo "Truth: $(tr '\n' ' ' <"$work/truth")"
    echo
    echo "| what | CPU s (with Postfix's) |"
    echo "|---|---|"
    echo "| \`find <queue> -type f \\| wc -l\` x 5, as postfix | $(secs "$find_t") |"
    echo "| method showq, first cycle (\`check\`, process start included) | $(secs "$showq_first") |"
    echo "| method scan, first cycle (\`check\`, reads every file) | $(secs "$scan_first") |"
    echo "| method showq, steady state, per cycle (daemon every ${interval} s) | $(secs "$showq_steady") |"
    echo "| method scan, steady state, per cycle (daemon every ${interval} s, nothing changed) | $(secs "$scan_steady") |"
    echo "| method scan, first cycle, files read | $(grep -m 1 -o 'files_read:[0-9]*' "$work/first.txt") |"
    echo
    echo "Steady scan / find: $(echo "scale=2; $scan_steady / ($find_t + 0.0001)" | bc)x; steady scan / steady showq: $(echo "scale=3; $scan_steady / ($showq_steady + 0.0001)" | bc)x; first scan / first showq: $(echo "scale=2; $scan_first / ($showq_first + 0.0001)" | bc)x."
    echo
done
