#!/usr/bin/env bash
# Print the test Postfix's queue directory (postconf -h queue_directory).
# Usage: tests/e2e/queue-dir.sh       Exit: 0, or non-zero without Postfix.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
pf_queue_dir
