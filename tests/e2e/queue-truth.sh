#!/usr/bin/env bash
# Print the true number of files in every Postfix queue, as root, as
# "queue count" lines (maildrop incoming active deferred hold corrupt), counted
# recursively with find exactly like the Datadog check does.
# Usage: sudo tests/e2e/queue-truth.sh        Exit: 0, or 1 when not root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root
pf_queue_truth
