#!/usr/bin/env bash
# Print the true number of files in every queue of ANY Postfix instance, as
# "queue count" lines (maildrop incoming active deferred hold corrupt), counted
# recursively with find, exactly like queue-truth.sh does for the default one.
#
# Usage: sudo tests/e2e/queue-truth-dir.sh QUEUE_DIR
#        sudo tests/e2e/queue-truth-dir.sh -c CONFIG_DIR
#   QUEUE_DIR    e.g. /var/spool/postfix-out
#   -c CONFIG_DIR  take queue_directory from that instance's main.cf
#                  (postconf -c CONFIG_DIR -h queue_directory), e.g. /etc/postfix-out
# Exit: 0; 1 when not root; 2 on a usage error or a missing queue directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root

usage() { echo "usage: $(basename "$0") QUEUE_DIR | -c CONFIG_DIR" >&2; exit 2; }
case "${1:-}" in
    -c) [ $# -eq 2 ] || usage; qdir=$(postconf -c "$2" -h queue_directory) || exit 2 ;;
    ''|-*) usage ;;
    *)  [ $# -eq 1 ] || usage; qdir=$1 ;;
esac
[ -d "$qdir" ] || { echo "$(basename "$0"): error: no such queue directory: $qdir" >&2; exit 2; }

for q in $PF_QUEUES; do
    echo "$q $(find "$qdir/$q" -type f 2>/dev/null | wc -l)"
done
