# shellcheck shell=sh
# $1 is 1 on a first install, 2 or more on an upgrade.
. /usr/share/postfix-dogstatsd/install-common.sh
pfdd_create_user
pfdd_config_permissions
if [ "$1" -eq 1 ]; then
    pfdd_join_postdrop
    pfdd_join_log_groups
    pfdd_install_sudoers
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl enable --now postfix-dogstatsd.service >/dev/null 2>&1 || :
    else
        systemctl try-restart postfix-dogstatsd.service >/dev/null 2>&1 || :
    fi
fi
