#!/usr/bin/env bash
# Captures what Debian 12's journald keeps of Postfix's lines, as the journal source reads them
# (`journalctl --output=json --output-fields=SYSLOG_IDENTIFIER,MESSAGE SYSLOG_FACILITY=2`), into
# tests/fixtures/journal/: a booted Debian 12 container (container.sh) with Debian's Postfix,
# and known traffic: 2 delivered to root, 1 to an unknown user (bounced, and its notice to
# root), 1 to a closed relay port (deferred). Run by hand, as root; not part of CI.
# Commands for inside the container are single-quoted on purpose: they expand in there.
# shellcheck disable=SC2016
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PFDD_CT_DIR=${PFDD_CT_DIR:-/var/tmp/pfdd-ct-capture}
# shellcheck source=SCRIPTDIR/container.sh
. "$here/container.sh"
trap ct_destroy EXIT
ct_create
ct_boot
ct_install_postfix
ct_sh 'for to in root@localhost root@localhost nosuchuser@localhost someone@example.org; do
    printf "Subject: capture\n\nbody\n" | sendmail -f root@localhost "$to"; done'
ct_wait 60 '[ "$(journalctl -o cat SYSLOG_FACILITY=2 | grep -c " status=")" -ge 5 ]' \
    || ct_die "the status lines did not arrive in the journal"
version=$(ct_sh 'postconf -h mail_version')
out=$repo/tests/fixtures/journal/postfix-$version.jsonl
ct_sh 'journalctl --output=json --output-fields=SYSLOG_IDENTIFIER,MESSAGE --no-pager SYSLOG_FACILITY=2' >"$out"
echo "captured $(wc -l <"$out") entries into $out"
