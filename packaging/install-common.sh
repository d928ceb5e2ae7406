# shellcheck shell=sh
# Shared by the .deb postinst and the .rpm %post (sourced, POSIX sh): the service user, its
# groups, the config's permissions, and the sudoers drop-in, validated before it is put in place.
# What grants a privilege (group postdrop, the sudoers drop-in) happens on the first install
# only: an admin who took it away on purpose keeps it that way across upgrades.
pfdd_user=postfix-dogstatsd

pfdd_create_user() {
    if ! getent group "$pfdd_user" >/dev/null; then
        groupadd --system "$pfdd_user"
    fi
    if ! getent passwd "$pfdd_user" >/dev/null; then
        useradd --system --gid "$pfdd_user" --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "postfix-dogstatsd daemon" "$pfdd_user"
    fi
}

# postdrop: what `postqueue` and the showq socket need; absent until Postfix is installed (then
# `postfix-dogstatsd check` names the fix). First install only.
pfdd_join_postdrop() {
    if getent group postdrop >/dev/null; then
        usermod --append --groups postdrop "$pfdd_user"
    fi
}

# adm (reads /var/log/mail.log on Debian and Ubuntu) and systemd-journal (reads the system
# journal): what the `log:` section needs, whichever source it follows. Not named in the unit's
# SupplementaryGroups=, because systemd refuses to start a unit whose group does not exist, and a
# host without one would lose the queue metrics too. First install only.
pfdd_join_log_groups() {
    for group in adm systemd-journal; do
        if getent group "$group" >/dev/null; then
            usermod --append --groups "$group" "$pfdd_user"
        fi
    done
}

pfdd_config_permissions() {
    # Never through a symbolic link: chmod would follow it to whatever it names.
    if [ -f /etc/postfix-dogstatsd/config.yaml ] && [ ! -L /etc/postfix-dogstatsd/config.yaml ]; then
        chgrp -h "$pfdd_user" /etc/postfix-dogstatsd/config.yaml
        chmod 0640 /etc/postfix-dogstatsd/config.yaml
    fi
}

pfdd_install_sudoers() {
    target=/etc/sudoers.d/postfix-dogstatsd
    template=/usr/share/postfix-dogstatsd/sudoers
    # First install only (the callers see to that); an existing file is never replaced.
    [ -e "$target" ] && return 0
    if ! command -v visudo >/dev/null 2>&1 || [ ! -d /etc/sudoers.d ]; then
        echo "postfix-dogstatsd: sudo is not installed; method find will need $template in /etc/sudoers.d" >&2
        return 0
    fi
    # sudo ignores files in sudoers.d whose name contains a dot: a safe place to check it.
    tmp=$(mktemp /etc/sudoers.d/.postfix-dogstatsd.XXXXXX)
    cp "$template" "$tmp"
    chmod 0440 "$tmp"
    # An older sudo rejects options it does not know: try once more without the newer one.
    if ! visudo -cf "$tmp" >/dev/null 2>&1; then
        grep -v '^Defaults:postfix-dogstatsd !log_allowed$' "$template" >"$tmp"
    fi
    if visudo -cf "$tmp" >/dev/null; then
        mv "$tmp" "$target"
    else
        rm -f "$tmp"
        echo "postfix-dogstatsd: $template did not pass visudo -c; not installed" >&2
    fi
}
