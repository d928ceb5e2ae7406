#!/usr/bin/env bash
# Add to the test Postfix (set up by postfix-setup.sh) the SMTP services the
# log families' end-to-end test talks to, all on 127.0.0.1, and start what
# they need: a policy server (policy-server.py) and Dovecot as the SASL server.
#
# Usage: sudo tests/e2e/flow-setup.sh      (no arguments)
# Exit:  0 when every service listens; non-zero with a message otherwise.
#
# The services live in master.cf only, after the pristine copy: the next
# postfix-reset.sh (or pf_unpause_all) takes them away again. Run this after
# the reset, never before. Idempotent.
#
#   127.0.0.1:10025  postfix/flow        smtpd_delay_reject=no, so that each
#                    restriction rejects at its own stage: a client map
#                    (127.0.0.3, CONNECT), reject_invalid_helo_hostname (HELO),
#                    reject_unlisted_sender (MAIL), mynetworks = 127.0.0.1/32
#                    and reject_unauth_destination (RCPT from 127.0.0.2), the
#                    policy server (RCPT), a client map for DATA (127.0.0.5),
#                    a sender map at end of data (eod@sender.test); its own
#                    cleanup service with header_checks (REJECT, HOLD);
#                    smtpd_timeout = 2s.
#   127.0.0.1:10587  postfix/submission  SASL through Dovecot (user pfduser).
#   127.0.0.1:10046  postfix/tlsin       STARTTLS with the snakeoil certificate;
#                    rejects every recipient. tls.test is routed here through
#                    the pfdtls transport (postfix-setup.sh's transport map), so
#                    Postfix's SMTP client speaks TLS to it.
# TLS sessions are logged only with smtpd_tls_loglevel / smtp_tls_loglevel 1,
# set on these services (the README says so to users).
#   127.0.0.1:10043  postscreen          greet action drop, greet wait 1 s, an
#                    empty access list and its own cache (emptied here), in
#                    front of the "smtpd pass" service.
# The policy server listens on 127.0.0.1:10044.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root

[ -f "$PF_MASTER_PRISTINE" ] || die "$PF_MASTER_PRISTINE missing: run postfix-setup.sh first"
command -v dovecot >/dev/null 2>&1 || die "dovecot is not installed (postfix-setup.sh installs dovecot-core)"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"

maps=$PF_CONF_DIR/pfdtest-flow
mkdir -p "$maps"
# texthash: read when a daemon opens it, no postmap.
echo "127.0.0.3 REJECT pfdtest client check" >"$maps/clients"
echo "127.0.0.5 REJECT pfdtest data check" >"$maps/data-clients"
echo "eod@sender.test REJECT pfdtest end-of-data check" >"$maps/eod-senders"
echo "tls@tls.test REJECT pfdtest TLS receiver takes no mail" >"$maps/tls-recipients"
cat >"$maps/header-checks" <<'EOF'
/^Subject: pfdtest-reject/ REJECT pfdtest header check
/^Subject: pfdtest-hold/ HOLD pfdtest header check
EOF

# postscreen's own cache, emptied so that the first good client is PASS NEW.
data_dir=$(postconf -h data_directory)
rm -f "$data_dir/pfdtest_psc_cache.db"

tmp=$(mktemp "$PF_MASTER_CF.XXXXXX")
cp -p "$PF_MASTER_PRISTINE" "$tmp"
cat >>"$tmp" <<EOF
# pfdtest-flow: added by tests/e2e/flow-setup.sh, taken away by postfix-reset.sh.
127.0.0.1:10025 inet n - y - - smtpd
  -o syslog_name=postfix/flow
  -o smtpd_peername_lookup=no
  -o smtpd_delay_reject=no
  -o smtpd_timeout=2s
  -o smtpd_tls_loglevel=1
  -o mynetworks=127.0.0.1/32
  -o smtpd_client_restrictions=check_client_access,texthash:$maps/clients
  -o smtpd_helo_restrictions=reject_invalid_helo_hostname
  -o smtpd_sender_restrictions=reject_unlisted_sender
  -o smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination
  -o smtpd_recipient_restrictions=check_policy_service,inet:127.0.0.1:10044
  -o smtpd_data_restrictions=check_client_access,texthash:$maps/data-clients
  -o smtpd_end_of_data_restrictions=check_sender_access,texthash:$maps/eod-senders
  -o cleanup_service_name=pfdcleanup
pfdcleanup unix n - y - 0 cleanup
  -o header_checks=regexp:$maps/header-checks
127.0.0.1:10587 inet n - y - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_peername_lookup=no
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=private/pfdtest-auth
  -o smtpd_tls_auth_only=no
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
127.0.0.1:10046 inet n - y - - smtpd
  -o syslog_name=postfix/tlsin
  -o smtpd_peername_lookup=no
  -o smtpd_tls_security_level=may
  -o smtpd_tls_loglevel=1
  -o smtpd_recipient_restrictions=check_recipient_access,texthash:$maps/tls-recipients
127.0.0.1:10043 inet n - y - 1 postscreen
  -o postscreen_access_list=
  -o postscreen_greet_action=drop
  -o postscreen_greet_wait=1s
  -o postscreen_cache_map=btree:\$data_directory/pfdtest_psc_cache
smtpd pass - - y - - smtpd
  -o smtpd_peername_lookup=no
pfdtls unix - - y - - smtp
  -o smtp_tls_loglevel=1
EOF
chmod 0644 "$tmp"
mv "$tmp" "$PF_MASTER_CF"

# Dovecot, as the SASL server only: its own configuration, run directory and log.
dc=/etc/pfdtest-dovecot
mkdir -p "$dc"
# passwd-file: user:{scheme}password
echo "pfduser:{PLAIN}pfdtest-secret" >"$dc/users"
chmod 0640 "$dc/users"
chgrp dovecot "$dc/users"
cat >"$dc/dovecot.conf" <<EOF
# Managed by tests/e2e/flow-setup.sh: Dovecot as Postfix's SASL server, nothing else.
protocols =
base_dir = /run/pfdtest-dovecot
log_path = /var/log/pfdtest-dovecot.log
ssl = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = $dc/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service auth {
  unix_listener $(pf_queue_dir)/private/pfdtest-auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
if [ -f /run/pfdtest-dovecot/master.pid ]; then
    doveadm -c "$dc/dovecot.conf" stop >/dev/null 2>&1 || true
    wait_until 10 sh -c '! [ -f /run/pfdtest-dovecot/master.pid ]' || true
fi
(detached dovecot -c "$dc/dovecot.conf") </dev/null >>/var/log/pfdtest-dovecot.log 2>&1 || die "dovecot did not start (see /var/log/pfdtest-dovecot.log)"
wait_until 10 test -S "$(pf_queue_dir)/private/pfdtest-auth" || die "dovecot's auth socket did not appear"

# The policy server: replaces any earlier one.
pidfile=/run/pfdtest-policy.pid
if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
fi
(detached python3 "$here/policy-server.py" 10044) </dev/null >/var/log/pfdtest-policy.log 2>&1 &
echo $! >"$pidfile"

postfix check || die "postfix check failed"
if pf_running; then
    postfix reload >/dev/null 2>&1 || die "postfix reload failed"
else
    pf_start
fi
# Listening sockets from /proc/net/tcp (state 0A), not a connection: a probe
# would write sessions into the log the test counts.
listening() {
    local port hex
    for port in 10025 10587 10046 10043 10044; do
        hex=$(printf '%04X' "$port")
        grep -q "^ *[0-9]*: 0100007F:$hex 00000000:0000 0A " /proc/net/tcp || return 1
    done
}
wait_until 30 listening || die "a flow service does not listen (ports 10025 10587 10046 10043 10044)"
echo "flow services listening: 10025 (flow) 10587 (submission) 10046 (tlsin) 10043 (postscreen); policy 10044"
