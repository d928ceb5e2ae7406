# shellcheck shell=bash disable=SC2154
# Shared by the benchmark scripts (sourced): time a command with /usr/bin/time, best of 3.
# Needs $work (a scratch directory), set by the script that sources this (hence SC2154 off).
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null

# best of 3 runs: "wall cpu rss_kib"
measure() {
    local best=""
    for _ in 1 2 3; do
        /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || true
        read -r wall user sys rss < <(tail -n 1 "$work/t")
        local cpu
        cpu=$(echo "$user + $sys" | bc)
        if [ -z "$best" ] || [ "$(echo "$wall < ${best%% *}" | bc)" = 1 ]; then
            best="$wall $cpu $rss"
        fi
    done
    echo "$best"
}

# One Markdown table row: label, then the command.
row() {
    local label=${1//|/\\|}; shift   # a | in a label would split the Markdown cell
    read -r wall cpu rss < <(measure "$@")
    printf '| %s | %s | %.2f | %s MiB |\n' "$label" "$wall" "$cpu" "$(( rss / 1024 ))"
}
