#!/usr/bin/env bash
# Pause services of the test Postfix (comment them out of master.cf and reload, waiting until
# their processes are gone), so that nothing moves in its queues: tests/e2e/postfix-unpause.sh
# or postfix-reset.sh undoes it.
# Usage: sudo tests/e2e/postfix-pause.sh SERVICE...    (e.g. qmgr pickup)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root
[ $# -gt 0 ] || die "usage: $(basename "$0") SERVICE..."
pf_pause "$@"
