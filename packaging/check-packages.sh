#!/usr/bin/env bash
# Builds the .deb and .rpm, then checks the .deb's whole life on this machine: lintian, install,
# files, user, sudoers, validate, `check` as the service user against the running Postfix,
# remove, purge, and nothing left. Lists the .rpm. As root, on Debian, with Postfix set up by
# tests/e2e/postfix-setup.sh (as .ci/run does).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-packages: $*" >&2; exit 1; }

for tool in cargo-deb cargo-generate-rpm; do
    command -v "$tool" >/dev/null || cargo install --locked --quiet "$tool"
done
command -v lintian >/dev/null && command -v rpm >/dev/null \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lintian rpm >/dev/null

bash packaging/build.sh
deb=$(ls -1 target/debian/postfix-dogstatsd_*.deb | tail -n 1)
rpmfile=$(ls -1 target/generate-rpm/postfix-dogstatsd-*.rpm | tail -n 1)

echo "--- lintian"
lintian --fail-on error "$deb"

echo "--- install"
dpkg -i "$deb"
test -x /usr/bin/postfix-dogstatsd || fail "no binary"
test -f /usr/share/man/man1/postfix-dogstatsd.1.gz || fail "no man page"
test -f /lib/systemd/system/postfix-dogstatsd.service || fail "no unit"
grep -qx /etc/postfix-dogstatsd/config.yaml /var/lib/dpkg/info/postfix-dogstatsd.conffiles \
    || fail "config.yaml is not a conffile"
getent passwd postfix-dogstatsd >/dev/null || fail "no user"
id -nG postfix-dogstatsd | tr ' ' '\n' | grep -x postdrop >/dev/null || fail "user not in postdrop"
test "$(stat -c '%a %G' /etc/postfix-dogstatsd/config.yaml)" = "640 postfix-dogstatsd" \
    || fail "config permissions: $(stat -c '%a %U:%G' /etc/postfix-dogstatsd/config.yaml)"
test "$(stat -c '%a' /etc/sudoers.d/postfix-dogstatsd)" = 440 || fail "no sudoers file"
visudo -c >/dev/null || fail "visudo -c"
systemd-analyze verify /lib/systemd/system/postfix-dogstatsd.service || fail "systemd-analyze verify"
postfix-dogstatsd validate
echo "--- check as the service user"
runuser -u postfix-dogstatsd -- postfix-dogstatsd check
echo "--- method find through the packaged sudoers lines"
tmp=$(mktemp -d /tmp/pfdd-pkg.XXXXXX); chmod 755 "$tmp"
printf 'init_config: {postfix_user: postfix}\ninstances:\n  - {method: find, directory: /var/spool/postfix, queues: [incoming, active, deferred, hold, maildrop]}\n' > "$tmp/find.yaml"
chmod 644 "$tmp/find.yaml"
out=$(runuser -u postfix-dogstatsd -- postfix-dogstatsd check -c "$tmp/find.yaml") || fail "find check failed: $out"
grep -q "(sudo find," <<<"$out" || fail "find did not use sudo: $out"
rm -rf "$tmp"

echo "--- upgrade keeps an edited config"
echo "# edited by the admin" >> /etc/postfix-dogstatsd/config.yaml
dpkg -i "$deb"
grep -q "edited by the admin" /etc/postfix-dogstatsd/config.yaml || fail "upgrade overwrote the config"

echo "--- remove"
dpkg -r postfix-dogstatsd
test ! -e /usr/bin/postfix-dogstatsd || fail "binary left after remove"
test -f /etc/postfix-dogstatsd/config.yaml || fail "remove must keep the config"
echo "--- purge"
dpkg -P postfix-dogstatsd
for path in /etc/postfix-dogstatsd /etc/sudoers.d/postfix-dogstatsd /etc/default/postfix-dogstatsd \
    /usr/share/postfix-dogstatsd /lib/systemd/system/postfix-dogstatsd.service; do
    test ! -e "$path" || fail "$path left after purge"
done
! getent passwd postfix-dogstatsd >/dev/null || fail "user left after purge"
! getent group postfix-dogstatsd >/dev/null || fail "group left after purge"
! dpkg -s postfix-dogstatsd >/dev/null 2>&1 || fail "package still known to dpkg"

echo "--- rpm contents"
rpm -qlp "$rpmfile"
rpm -qp --scripts "$rpmfile" | grep pfdd_create_user >/dev/null || fail "rpm has no %post"
rpm -qcp "$rpmfile" | grep -x /etc/postfix-dogstatsd/config.yaml >/dev/null || fail "rpm config not marked"
echo "packages OK: $deb $rpmfile"
