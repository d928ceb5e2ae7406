# shellcheck shell=sh
# $1 is 0 on erase, 1 on upgrade.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl disable --now postfix-dogstatsd.service >/dev/null 2>&1 || :
fi
