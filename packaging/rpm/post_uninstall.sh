# shellcheck shell=sh
# RPM has no purge: on erase, remove what %post created.
if [ "$1" -eq 0 ]; then
    rm -f /etc/sudoers.d/postfix-dogstatsd
    rm -rf /var/lib/postfix-dogstatsd
    userdel postfix-dogstatsd >/dev/null 2>&1 || :
    groupdel postfix-dogstatsd >/dev/null 2>&1 || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
