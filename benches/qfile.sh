#!/usr/bin/env bash
# Method scan against method showq and `find | wc -l`, side by side in one run, on a real
# Postfix holding N deferred messages (tests/e2e/bulk-fill.sh), in system-wide CPU from
# /proc/stat (user, nice, system, irq, softirq, steal of all CPUs: Postfix's showq and every
# child counted, not only the daemon's own), less the host's idle noise measured the same way.
#   first cycle:  `check` (one cold collection, process start included) with scan, with showq
#   steady state: a daemon collecting every INTERVAL seconds, CPU over WINDOW seconds after its
#                 first two cycles, per cycle
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

busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
secs() { echo "scale=3; $1 / $hz" | bc; }
# cpu CMD...: system-wide CPU seconds (ticks) of one run, the least of three.
cpu() {
    local best=
    for _ in 1 2 3; do
        local a b
        a=$(busy); "$@" >/dev/null 2>&1 || true; b=$(busy)
        if [ -z "$best" ] || [ $((b - a)) -lt "$best" ]; then best=$((b - a)); fi
    done
    echo "$best"
}
# idle: system-wide ticks of the host doing nothing of ours for WINDOW seconds.
idle() { local a b; a=$(busy); sleep "$window"; b=$(busy); echo $((b - a)); }
# steady YAML AS...: ticks per cycle of a daemon collecting every INTERVAL (or back to back when
# a cycle takes longer), less idle noise, over the cycles that ended within WINDOW.
steady() {
    local yaml=$1 noise=$2; shift 2
    printf '%s\n' "$yaml" >"$work/steady.yaml"
    chmod 644 "$work/steady.yaml"
    "$@" "$bin" run -c "$work/steady.yaml" --log-level debug 2>"$work/steady.log" &
    local pid=$!
    collected() { grep -c 'collected' "$work/steady.log" || true; }
    until [ "$(collected)" -ge 2 ]; do sleep 0.2; done
    local a b c0 c1 t0 t1
    c0=$(collected); a=$(busy); t0=$(date +%s%N); sleep "$window"
    until [ "$(collected)" -gt "$c0" ]; do sleep 0.2; done
    c1=$(collected); b=$(busy); t1=$(date +%s%N)
    kill -TERM "$pid"; wait "$pid" || true
    # The host's own noise, at the idle rate, over the time measured.
    echo $(( (b - a - noise * (t1 - t0) / (window * 1000000000)) / (c1 - c0) ))
}
cfg() { printf 'init_config: {postfix_user: postfix}\ninstances: [{method: %s, timeout: 600, min_collection_interval: %s}]\n' "$1" "$interval"; }
as_postfix=(setpriv --reuid=postfix --regid=postfix --clear-groups --no-new-privs)
as_postdrop=(setpriv --reuid=pfdtest --regid=pfdtest --groups=postdrop --no-new-privs)

for n in "${sizes[@]}"; do
    bash tests/e2e/bulk-fill.sh "$n" >"$work/truth"
    bash tests/e2e/postfix-pause.sh qmgr pickup
    cfg scan >"$work/scan.yaml"; cfg showq >"$work/showq.yaml"
    chmod 644 "$work"/*.yaml
    noise=$(idle)
    find_t=$(cpu runuser -u postfix -- sh -c "for q in $queues; do find /var/spool/postfix/\$q -type f | wc -l; done")
    scan_first=$(cpu "${as_postfix[@]}" "$bin" check -c "$work/scan.yaml")
    showq_first=$(cpu "${as_postdrop[@]}" "$bin" check -c "$work/showq.yaml")
    scan_steady=$(steady "$(cat "$work/scan.yaml")" "$noise" "${as_postfix[@]}")
    showq_steady=$(steady "$(cat "$work/showq.yaml")" "$noise" "${as_postdrop[@]}")
    echo "### $n deferred messages (real Postfix $(postconf -h mail_version), \`benches/qfile.sh $n\`)"
    echo
    echo "Truth: $(tr '\n' ' ' <"$work/truth"); host noise $(secs "$noise") s per ${window} s, subtracted."
    echo
    echo "| what | system-wide CPU s |"
    echo "|---|---|"
    echo "| \`find <queue> -type f \\| wc -l\` x 5, as postfix | $(secs "$find_t") |"
    echo "| method showq, first cycle (\`check\`, process start included) | $(secs "$showq_first") |"
    echo "| method scan, first cycle (\`check\`, reads every file) | $(secs "$scan_first") |"
    echo "| method showq, steady state, per cycle (daemon every ${interval} s) | $(secs "$showq_steady") |"
    echo "| method scan, steady state, per cycle (daemon every ${interval} s, nothing changed) | $(secs "$scan_steady") |"
    echo
    echo "Steady scan / find: $(echo "scale=2; $scan_steady / ($find_t + 0.0001)" | bc)x; steady scan / steady showq: $(echo "scale=3; $scan_steady / ($showq_steady + 0.0001)" | bc)x; first scan / first showq: $(echo "scale=2; $scan_first / ($showq_first + 0.0001)" | bc)x."
    echo
done
