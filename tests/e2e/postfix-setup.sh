#!/usr/bin/env bash
# Install and configure a real Postfix for the end-to-end tests of
# postfix-dogstatsd, in a way that no mail can ever leave the machine.
#
# Usage: sudo tests/e2e/postfix-setup.sh        (no arguments)
# Env:   PFDTEST_USER   unprivileged user the tests run the daemon as (pfdtest)
#        PFDTEST_SKIP_APT=1  do not call apt-get (packages already present)
#        PFDTEST_FORCE=1     allow taking over a Postfix configured before
#                            (without it the script refuses: see below)
# Exit:  0 configured and running; non-zero with a message on stderr otherwise.
#
# Idempotent: run it again at any time; it re-applies the same configuration,
# restores master.cf (un-pauses qmgr/pickup) and (re)starts Postfix. It does
# NOT delete queued mail: use postfix-reset.sh for that.
#
# Works on Debian 12 (Postfix 3.7) as root, without systemd (containers), and
# on a developer's own Debian box (it only touches Postfix's config, one system
# user, one sudoers drop-in and /var/log/postfix.log).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"
require_root

TEST_USER=${PFDTEST_USER:-pfdtest}

# Closed loopback port used as relayhost: every message is deferred with
# "connection refused" and never leaves the machine.
CLOSED_PORT=2
# Loopback ports of tests/e2e/fake-smtp.py, routed per test domain by the
# transport map below (see make-reasons.sh / fill-queues.sh).
TRANSPORT_MAP=$PF_CONF_DIR/pfdtest-transport

# This rewrites Postfix's configuration so that it can no longer deliver any
# mail off this machine. On a box where Postfix was set up before (and not by
# this script: no transport map of ours yet), refuse unless asked explicitly;
# the original main.cf/master.cf are kept as *.pfdtest-orig in that case.
if [ -f "$PF_CONF_DIR/main.cf" ] && [ ! -f "$TRANSPORT_MAP" ]; then
    [ "${PFDTEST_FORCE:-0}" = 1 ] \
        || die "an existing Postfix config would be overwritten; set PFDTEST_FORCE=1 to allow it"
    [ -f "$PF_CONF_DIR/main.cf.pfdtest-orig" ] || cp -p "$PF_CONF_DIR/main.cf" "$PF_CONF_DIR/main.cf.pfdtest-orig"
    [ -f "$PF_CONF_DIR/master.cf.pfdtest-orig" ] || cp -p "$PF_MASTER_CF" "$PF_CONF_DIR/master.cf.pfdtest-orig"
fi

# --- 1. packages --------------------------------------------------------------
if [ "${PFDTEST_SKIP_APT:-0}" != 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # "Local only" gives a complete main.cf without any prompt; we override the
    # parts that matter below (it sets default_transport/relay_transport=error).
    debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string localhost.localdomain
postfix postfix/destinations string localhost
postfix postfix/protocols select ipv4
EOF
    pkgs=()
    # dovecot-core: the SASL server of flow-setup.sh.
    for p in postfix sudo socat dovecot-core; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep 'install ok installed' >/dev/null || pkgs+=("$p")
    done
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm  >/dev/null 2>&1 || pkgs+=(npm)
    command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        log "installing: ${pkgs[*]}"
        apt-get install -y -q -o Dpkg::Options::=--force-confold --no-install-recommends "${pkgs[@]}" >/dev/null
    fi
fi
command -v postconf >/dev/null 2>&1 || die "postfix is not installed"

# --- 2. main.cf ------------------------------------------------------------------
# The log goes to a file: there is no syslog daemon in containers. It must be
# writable by user postfix, or postsuper fails while Postfix is stopped.
touch /var/log/postfix.log
chown postfix:adm /var/log/postfix.log 2>/dev/null || chown postfix /var/log/postfix.log
chmod 0640 /var/log/postfix.log

# The test transport map: only the reserved .test TLD, all on 127.0.0.1.
# texthash: needs no postmap. fake-smtp.py listens on these ports when a test
# needs it; when it does not, the port is closed and the mail is deferred with
# "connection refused", which is just as harmless.
cat >"$TRANSPORT_MAP.tmp" <<EOF
# Managed by tests/e2e/postfix-setup.sh: test domains routed to loopback only.
refused.test   smtp:[127.0.0.1]:$CLOSED_PORT
timeout.test   smtp:[127.0.0.1]:10026
greylist.test  smtp:[127.0.0.1]:10027
full.test      smtp:[127.0.0.1]:10028
busy.test      smtp:[127.0.0.1]:10029
lost.test      smtp:[127.0.0.1]:10030
hangup.test    smtp:[127.0.0.1]:10031
data.test      smtp:[127.0.0.1]:10032
# postfix/tlsin of flow-setup.sh, through its pfdtls transport (TLS logged).
tls.test       pfdtls:[127.0.0.1]:10046
EOF
mv "$TRANSPORT_MAP.tmp" "$TRANSPORT_MAP"

postconf -e \
    "compatibility_level = 3.6" \
    "myhostname = localhost.localdomain" \
    "myorigin = localhost" \
    "mydestination = localhost" \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "mynetworks = 127.0.0.0/8" \
    "smtp_dns_support_level = disabled" \
    "smtp_host_lookup = native" \
    "lmtp_host_lookup = native" \
    "relayhost = [127.0.0.1]:$CLOSED_PORT" \
    "default_transport = smtp" \
    "relay_transport = relay" \
    "transport_maps = texthash:$TRANSPORT_MAP" \
    "maillog_file = /var/log/postfix.log" \
    "queue_run_delay = 3600s" \
    "minimal_backoff_time = 7200s" \
    "maximal_backoff_time = 14400s" \
    "delay_warning_time = 0h" \
    "bounce_queue_lifetime = 5d" \
    "maximal_queue_lifetime = 5d"
# Settings the capture scripts change temporarily: back to their defaults.
postconf -X authorized_mailq_users enable_long_queue_ids \
    smtp_connect_timeout smtp_helo_timeout disable_dns_lookups 2>/dev/null || true
# Why these values:
# - myorigin/mydestination = localhost: mail to root (cron, sudo) is delivered
#   locally to /var/mail/root instead of joining the deferred queue the tests
#   count. Every other domain is relayed to the closed port and deferred.
# - smtp_dns_support_level = disabled + native lookups: the SMTP client never
#   asks DNS; the relayhost and transport next-hops are numeric loopback
#   addresses in brackets, so no lookup happens at all.
# - long backoff / queue_run_delay: deferred mail stays in "deferred" during a
#   test run instead of cycling through "active".
# - Local only set default_transport/relay_transport = error: set back.

# --- 3. master.cf: keep a pristine copy, un-pause everything -------------------
if [ ! -f "$PF_MASTER_PRISTINE" ]; then
    grep -q '^#pfdtest-paused#' "$PF_MASTER_CF" \
        && die "master.cf has paused services but no pristine copy; fix by hand"
    cp -p "$PF_MASTER_CF" "$PF_MASTER_PRISTINE"
fi
cp -p "$PF_MASTER_PRISTINE" "$PF_MASTER_CF"

# --- 4. test user and sudoers -------------------------------------------------
if ! id "$TEST_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$TEST_USER"
fi

HANG_FIND=/usr/local/libexec/pfdtest-hang-find
mkdir -p "$(dirname "$HANG_FIND")"
cat >"$HANG_FIND.tmp" <<'EOF2'
#!/bin/sh
# Installed by tests/e2e/postfix-setup.sh: a find that ignores SIGTERM and hangs for 7 s.
trap '' TERM
sleep 7
EOF2
chmod 0755 "$HANG_FIND.tmp"
mv "$HANG_FIND.tmp" "$HANG_FIND"

sudoers=/etc/sudoers.d/postfix-dogstatsd-test
qdir=$(pf_queue_dir)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
    echo "# Managed by tests/e2e/postfix-setup.sh (postfix-dogstatsd e2e tests)."
    echo "# No mail to root on refusals (Debian's sudo would otherwise add mail to"
    echo "# the very queue the tests count), no tty, no lecture."
    echo "Defaults:$TEST_USER !mail_badpass, !mail_no_user, !mail_no_host, !mail_no_perms, !requiretty, !lecture"
    echo "# Exactly the argv the Datadog check runs. Deliberately not for 'corrupt',"
    echo "# so a test can see a refused queue."
    for q in incoming active deferred hold maildrop; do
        echo "$TEST_USER ALL=(postfix) NOPASSWD: /usr/bin/find $qdir/$q -type f"
    done
    echo "# A find that hangs and ignores SIGTERM (a stuck NFS spool): what sudo runs as"
    echo "# postfix is out of our kill's reach (tests/e2e.rs, the hung sudo test)."
    echo "$TEST_USER ALL=(postfix) NOPASSWD: $HANG_FIND $qdir/deferred -type f"
} >"$tmp"
visudo -cqf "$tmp" || die "generated sudoers file does not validate"
chmod 0440 "$tmp"
chown root:root "$tmp"
mv "$tmp" "$sudoers"
trap - EXIT

# --- 5. start -----------------------------------------------------------------
postfix check || die "postfix check failed"
newaliases
if pf_running; then
    postfix reload >/dev/null 2>&1 || die "postfix reload failed"
else
    pf_start
fi
wait_until 30 pf_running || die "postfix is not running"

# --- 6. summary ---------------------------------------------------------------
echo "postfix $(postconf -h mail_version) running; queue_directory=$qdir"
echo "relayhost=$(postconf -h relayhost) inet_interfaces=$(postconf -h inet_interfaces) default_transport=$(postconf -h default_transport)"
echo "test user: $TEST_USER (uid $(id -u "$TEST_USER")); sudoers: $sudoers"
echo "queues:"
pf_queue_truth | sed 's/^/  /'
