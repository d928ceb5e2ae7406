#!/usr/bin/env bash
# Capture tests/fixtures/logs/maillog-postfix-3.7.11-flow.log from the real
# Postfix: the log lines of the SMTP traffic of smtp-flow.py and one message to
# tls.test (the traffic of tests/e2e.rs's every_log_family test), as Postfix's
# maillog_file wrote them. Nothing is edited afterwards.
#
# Usage: sudo tests/e2e/capture-flow-log.sh [OUT]
#   OUT  default: tests/fixtures/logs/maillog-postfix-3.7.11-flow.log
# Exit:  0 on success. Leaves Postfix reset (postfix-reset.sh): the flow
#        services are gone, every queue empty.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root

out=${1:-$(cd "$here/../.." && pwd)/tests/fixtures/logs/maillog-postfix-3.7.11-flow.log}
log=$(postconf -h maillog_file)
[ -n "$log" ] || die "maillog_file is not set (postfix-setup.sh sets it)"

bash "$here/postfix-reset.sh" >/dev/null
bash "$here/flow-setup.sh" >/dev/null
sleep 1   # past the reload's own lines
from=$(stat -c %s "$log")
python3 "$here/smtp-flow.py" >/dev/null
printf 'Subject: capture\n\nbody\n' | sendmail -f root@localhost tls@tls.test
# Five recipients' outcomes: three sessions' messages and the tls.test bounce's
# notice delivered to root, and the bounce itself.
statuses() { tail -c +"$((from + 1))" "$log" | grep -c ' status=' || true; }
wait_until 60 sh -c "[ \"\$(tail -c +$((from + 1)) '$log' | grep -c ' status=')\" -ge 5 ]" \
    || die "only $(statuses) status lines after 60 s"
sleep 1   # qmgr's last "removed"
{
    echo "# Captured from this machine's real Postfix $(postconf -h mail_version) (Debian 12) maillog_file, $log,"
    echo "# by tests/e2e/capture-flow-log.sh, $(date -u +%Y-%m-%d): the traffic of tests/e2e/smtp-flow.py (rejects"
    echo "# at each stage, policy and greylist verdicts, header_checks, STARTTLS, SASL, postscreen) and"
    echo "# a message to tls.test through flow-setup.sh's services. Every line as written, in log order."
    tail -c +"$((from + 1))" "$log"
} >"$out.tmp"
mv "$out.tmp" "$out"
bash "$here/postfix-reset.sh" >/dev/null
echo "captured $(grep -vc '^#' "$out") lines into $out"
