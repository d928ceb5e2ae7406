#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), seeded with the committed fixtures.
# A crash leaves its input in fuzz/artifacts/<target>/: add it to tests as a regression test.
# cargo fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
seed() { # target, files...
    mkdir -p "corpus/$1"
    shift_target=$1; shift
    for f in "$@"; do [ -f "$f" ] && cp "$f" "corpus/$shift_target/"; done
    return 0
}
seed postqueue_json ../tests/fixtures/postqueue-j/*.jsonl
seed postqueue_text ../tests/fixtures/postqueue-p/*.txt
seed showq ../tests/fixtures/showq/*.bin
# Queue files and defer logs as captured: the target reads the first two bytes as flags and
# a split, so each seed is prefixed with them (read whole, no defer log; with UTF-8).
mkdir -p corpus/queue_file
for f in ../tests/fixtures/qfiles/*/files/*/*/* ../tests/fixtures/qfiles/*/files/*/*; do
    if [ -f "$f" ]; then { printf '\004\377'; cat "$f"; } >"corpus/queue_file/$(basename "$f")"; fi
done
seed defer_log ../tests/fixtures/qfiles/*/files/defer/*/*
seed log_line ../tests/fixtures/logs/*.log
seed log_families ../tests/fixtures/logs/*.log
# One entry per input, as the parser gets them.
mkdir -p corpus/journal_entry
for f in ../tests/fixtures/journal/*.jsonl; do
    [ -f "$f" ] && split -l 1 -a 4 "$f" "corpus/journal_entry/$(basename "$f")-"
done
seed host_output ../tests/fixtures/logs/*.log ../tests/fixtures/postqueue-p/*.txt
seed config ../examples/*.yaml ../tests/config/valid/*.yaml ../tests/config/invalid/*.yaml
mkdir -p logs
for target in $(cargo fuzz list); do
    echo "=== $target, ${seconds}s (log: fuzz/logs/$target.log)"
    if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" \
        -rss_limit_mb=1024 -max_len=1048576 > "logs/$target.log" 2>&1; then
        tail -n 40 "logs/$target.log"
        echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^Done [0-9]+ runs' "logs/$target.log" || tail -n 3 "logs/$target.log"
done
