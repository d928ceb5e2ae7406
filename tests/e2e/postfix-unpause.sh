#!/usr/bin/env bash
# Un-pause the test Postfix (qmgr and pickup, which tests pause while they count) and leave it
# running: what .ci/run does on its way out, whatever happened. Queued test mail stays.
# Usage: sudo tests/e2e/postfix-unpause.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root
[ -f "$PF_MASTER_PRISTINE" ] || exit 0   # never set up: nothing of ours to undo
pf_unpause_all
pf_start
