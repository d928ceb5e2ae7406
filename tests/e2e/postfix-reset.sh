#!/usr/bin/env bash
# Bring the test Postfix back to a clean state: master.cf restored from the
# pristine copy (qmgr and pickup un-paused), all mail deleted, Postfix running.
#
# Usage: sudo tests/e2e/postfix-reset.sh      (no arguments)
# Exit:  0 clean and running with every queue empty; non-zero otherwise.
#
# Postfix is stopped before deleting: "postsuper -d ALL" on a running Postfix
# can miss messages that move while it scans (SPEC section 6). postsuper does
# not look at maildrop, so that is cleared by hand (its files are only
# submissions that pickup has not taken yet).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root

pf_unpause_all
pf_stop
postsuper -d ALL >/dev/null 2>&1 || die "postsuper -d ALL failed (is /var/log/postfix.log writable by postfix?)"
qdir=$(pf_queue_dir)
find "$qdir/maildrop" "$qdir/incoming" "$qdir/active" "$qdir/deferred" "$qdir/hold" \
     "$qdir/corrupt" "$qdir/defer" "$qdir/bounce" "$qdir/trace" \
     -mindepth 1 -type f -delete
pf_start
left=$(pf_queue_truth | awk '{ n += $2 } END { print n + 0 }')
[ "$left" -eq 0 ] || die "queues not empty after reset: $(pf_queue_truth | tr '\n' ' ')"
echo "postfix reset: running, all queues empty"
