#!/usr/bin/env bash
# Fill the test Postfix with N deferred messages fast, for benchmarks (SPEC section 6): submit
# one real message and let it be deferred, then, with Postfix stopped, copy its queue file and
# its defer log under new names (hashed by their first character, as Postfix hashes), and run
# `postsuper -s` over the result. Postfix 3.7 keeps the names (BULK...) and lists every copy
# like any other message: postqueue, showq and the daemon read them as real queue files. Leaves qmgr and pickup paused (nothing moves) and
# prints the truth; tests/e2e/postfix-reset.sh undoes it.
#
# Usage: sudo tests/e2e/bulk-fill.sh N        Exit: 0, or non-zero with a message.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
require_root
n=${1:?usage: bulk-fill.sh N}

bash "$here/postfix-reset.sh" >/dev/null
FILL_HOLD=0 FILL_EXPIRE=0 FILL_ACTIVE=0 FILL_INCOMING=0 FILL_MAILDROP=0 \
    bash "$here/fill-queues.sh" 1 >/dev/null
q=$(pf_queue_dir)
src=$(find "$q/deferred" -type f -print -quit)
[ -n "$src" ] || die "no deferred message to copy"
id=$(basename "$src")
pf_stop
python3 - "$q" "$src" "$q/defer/${id:0:1}/$id" "$n" <<'PY'
import os, shutil, sys
q, src, log, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
st = os.stat(src)
for i in range(1, n):
    # Any unused name will do: postsuper -s renames it to match its inode.
    name = "BULK%06X" % i
    for kind, orig in (("deferred", src), ("defer", log)):
        if kind == "defer" and not os.path.exists(orig):
            continue
        d = os.path.join(q, kind, name[0])
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, name)
        shutil.copy2(orig, dst)
        os.chown(dst, st.st_uid, st.st_gid)
PY
postsuper -s >/dev/null 2>&1 || true
pf_start
pf_queue_truth
