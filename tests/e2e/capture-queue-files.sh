#!/usr/bin/env bash
# Regenerate tests/fixtures/qfiles/ from the real local Postfix (set up by
# postfix-setup.sh, with the second instance of postmulti-setup.sh): real queue
# files and defer logs of every queue, with what `postqueue -j` lists for the
# same still queue as the truth. Nothing is edited afterwards.
#
# Usage: sudo tests/e2e/capture-queue-files.sh [OUT_DIR]
#   OUT_DIR  default: tests/fixtures/qfiles next to this script's tests/ dir
# Exit:  0 on success. Leaves both instances running, default config, empty
#        queues. Hold /tmp/pfd-postfix.lock around it on a shared host.
#
# Written, per set (mixed: the default instance; long-ids: postfix-out, whose
# IDs are long):
#   <set>/files/<queue>/<path>   every file of maildrop incoming active deferred
#                                hold corrupt (hashed paths kept)
#   <set>/files/defer/<path>     every defer log
#   <set>/stat.tsv               <queue>/<path> TAB mode (octal) TAB mtime TAB size
#                                (git keeps neither modes nor times)
#   <set>/postqueue.jsonl        postqueue -j of the same still queue, as root
#
# The mixed set holds: every delay reason make-reasons.sh makes (kept), a message
# with a delivered recipient (a D record) and two deferred ones, 1010 recipients
# of one message (past showq's duplicate_filter_limit of 1000), a local part that
# needs quoting, a UTF-8 local part, recipients extracted from headers (sendmail
# -t, Bcc), then fill-queues.sh: hold (one forced to expire), a forced-expire
# deferred message, active (with its partial defer log), incoming and maildrop.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root

out=${1:-$(cd "$here/../.." && pwd)/tests/fixtures/qfiles}
OUT_CONF=/etc/postfix-out

finish() {
    "$here/postfix-reset.sh" >/dev/null || true
    "$here/postmulti-setup.sh" --reset >/dev/null || true
}
trap finish EXIT

# copy_set <set> <queue_dir> <postqueue args...>: the files, their stat, the truth.
copy_set() {
    local set=$1 qdir=$2; shift 2
    local dst=$out/$set before after
    rm -rf "$dst"
    mkdir -p "$dst/files"
    before=$(cd "$qdir" && find maildrop incoming active deferred hold corrupt defer -type f -printf '%p %m %T@ %s\n' | sort)
    "$@" >"$dst/postqueue.jsonl"
    (cd "$qdir" && find maildrop incoming active deferred hold corrupt defer -type f -printf '%p\t%m\t%T@\t%s\n') \
        | sort | awk -F'\t' '{ split($3, t, "."); print $1 "\t" $2 "\t" t[1] "\t" $4 }' >"$dst/stat.tsv"
    (cd "$qdir" && find maildrop incoming active deferred hold corrupt defer -type f -print0 \
        | xargs -0 -r cp --parents -t "$dst/files")
    chmod -R u+rwX,go+rX "$dst"
    after=$(cd "$qdir" && find maildrop incoming active deferred hold corrupt defer -type f -printf '%p %m %T@ %s\n' | sort)
    [ "$before" = "$after" ] || die "the $set queue moved during the capture"
    log "$set: $(wc -l <"$dst/stat.tsv") files, $(wc -l <"$dst/postqueue.jsonl") messages listed"
}

submit() { # submit <sender> <recipient>...
    local from=$1; shift
    printf 'Subject: qfile capture\n\ncapture-queue-files.sh\n' | sendmail -f "$from" "$@" || die "sendmail failed"
}

# --- the default instance ------------------------------------------------------
"$here/postfix-reset.sh" >/dev/null
REASONS_KEEP=1 "$here/make-reasons.sh" /dev/null >/dev/null
qdir=$(pf_queue_dir)
base=$(pf_queue_count deferred)
submit alice@example.com root@localhost carol@refused.test dave@refused.test
submit alice@example.com '"odd name"@refused.test' 'jörg@refused.test'
many=()
for i in $(seq 1 1010); do many+=("bulk$i@refused.test"); done
submit news@example.com "${many[@]}"
printf 'From: bob@example.net\nTo: to@refused.test\nBcc: bcc@refused.test\nSubject: extracted\n\nsendmail -t\n' \
    | sendmail -t -f bob@example.net || die "sendmail -t failed"
want=$((base + 4))
wait_until 60 sh -c "[ \$(find $qdir/maildrop $qdir/incoming $qdir/active -type f | wc -l) -eq 0 ] && [ \$(find $qdir/deferred -type f | wc -l) -ge $want ]" \
    || die "the extra messages were not all deferred: $(pf_queue_truth | tr '\n' ' ')"
"$here/fill-queues.sh" 6 >/dev/null
copy_set mixed "$qdir" postqueue -j

# --- the second instance: long queue IDs ------------------------------------------
"$here/postmulti-setup.sh" >/dev/null
[ "$(postconf -c "$OUT_CONF" -h enable_long_queue_ids)" = yes ] || die "postfix-out has no long queue IDs"
"$here/postmulti-setup.sh" --reset >/dev/null
"$here/postmulti-setup.sh" --fill 6 >/dev/null
out_q=$(postconf -c "$OUT_CONF" -h queue_directory)
find "$out_q/deferred" -type f -printf '%f\n' | sort | sed -n 1,2p | postsuper -c "$OUT_CONF" -h - 2>/dev/null
wait_until 10 sh -c "[ \$(find $out_q/hold -type f | wc -l) -ge 2 ]" || die "postsuper -h on postfix-out did not hold 2"
copy_set long-ids "$out_q" postqueue -c "$OUT_CONF" -j

echo "queue files written to $out"
