# shellcheck shell=bash disable=SC2016
# A booted Debian 12 container with a real systemd as PID 1, for tests that need what only
# systemd gives (Type=notify, the watchdog, drop-ins, the journal). Sourced, never executed;
# as root. Used by tests/systemd/run.sh (the installed service) and reusable by any other
# test script:
#
#   . tests/systemd/container.sh
#   ct_create          # debootstrap a fresh root file system (about 40 s)
#   ct_boot            # systemd-nspawn --boot, wait until `systemctl is-system-running`
#   ct_install_postfix # Debian's Postfix, loopback only, relaying to a closed port, journald
#   ct_sh 'systemctl status postfix@-'   # a command inside, clean environment
#   ct_destroy         # power off, remove the root file system (also on EXIT via ct_cleanup)
#
# The container shares the host's network (no --private-network): apt works inside, and a
# DogStatsD receiver on the host's 127.0.0.1 hears the daemon inside. So nothing in it may
# listen where the host's own test Postfix does: its Postfix has no SMTP listener at all
# (mail comes in through sendmail) and sends only to a closed loopback port.
#
# Env: PFDD_CT_DIR   where the root file system goes (default /var/tmp/pfdd-ct; removed by
#                    ct_destroy)
#      PFDD_CT_MIRROR Debian mirror for debootstrap (default: the host's first bookworm URI)

CT_DIR=${PFDD_CT_DIR:-/var/tmp/pfdd-ct}
CT_ROOT=$CT_DIR/root
CT_LOG=$CT_DIR/nspawn.log
CT_NSPAWN_PID=
CT_PID=

ct_die() { echo "container: error: $*" >&2; exit 1; }
ct_log() { echo "container: $*" >&2; }

# The host's tools, installed when missing. A machine that cannot boot a container fails
# here, loudly: a test that needs systemd never passes by skipping.
ct_require_tools() {
    [ "$(id -u)" = 0 ] || ct_die "must run as root"
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
    # debootstrap checks Debian's signatures: the keyring may be missing on other hosts.
    [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
    if [ "${#missing[@]}" -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || ct_die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null || ct_die "cannot install ${missing[*]}"
    fi
}

ct_mirror() {
    if [ -n "${PFDD_CT_MIRROR:-}" ]; then echo "$PFDD_CT_MIRROR"; return; fi
    local uri
    uri=$(grep -hoE '^(URIs: |deb )https?://[^ ]+/debian/?( |$)' \
        /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | sed -n 1p | sed -E 's/^(URIs: |deb )//; s/ *$//')
    echo "${uri:-http://deb.debian.org/debian}"
}

ct_create() {
    ct_require_tools
    ct_destroy
    mkdir -p "$CT_DIR"
    ct_log "debootstrap bookworm into $CT_ROOT"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus \
        bookworm "$CT_ROOT" "$(ct_mirror)" >"$CT_DIR/debootstrap.log" 2>&1 \
        || { tail -n 20 "$CT_DIR/debootstrap.log" >&2; ct_die "debootstrap failed"; }
    # A machine id of its own, so journald keeps a persistent journal under /var/log/journal.
    rm -f "$CT_ROOT/etc/machine-id"
    systemd-machine-id-setup --root="$CT_ROOT" >/dev/null
    mkdir -p "$CT_ROOT/var/log/journal"
    echo pfdd-ct >"$CT_ROOT/etc/hostname"
    # sudo mails root when it cannot resolve the host name, as Debian's installer prevents.
    printf '127.0.1.1\tpfdd-ct\n' >>"$CT_ROOT/etc/hosts"
}

# The PID (in the host's namespace) of the container's systemd, child of systemd-nspawn.
ct_find_pid() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = systemd ] || continue
        [ "$(awk '{print $4}' "$p/stat" 2>/dev/null)" = "$CT_NSPAWN_PID" ] || continue
        echo "${p#/proc/}"
        return 0
    done
    return 1
}

ct_boot() {
    [ -d "$CT_ROOT" ] || ct_die "no root file system: ct_create first"
    # --register=no/--keep-unit: the host needs no systemd of its own (CI has none).
    # --console=passive: no console; what the container logs goes to its journal.
    setsid systemd-nspawn -D "$CT_ROOT" --boot --register=no --keep-unit --console=passive \
        --machine=pfdd-ct </dev/null >"$CT_LOG" 2>&1 &
    CT_NSPAWN_PID=$!
    local _ state=
    for _ in $(seq 1 300); do
        kill -0 "$CT_NSPAWN_PID" 2>/dev/null || { cat "$CT_LOG" >&2; ct_die "systemd-nspawn exited"; }
        if [ -z "$CT_PID" ]; then CT_PID=$(ct_find_pid) || CT_PID=; fi
        if [ -n "$CT_PID" ]; then
            state=$(ct_sh 'systemctl is-system-running' 2>/dev/null) || true
            case "$state" in running) break ;; degraded) ct_sh 'systemctl --failed --no-pager' >&2; ct_die "booted degraded" ;; esac
        fi
        sleep 0.2
    done
    [ "$state" = running ] || { cat "$CT_LOG" >&2; ct_die "systemd did not reach 'running' within 60 s (last: ${state:-none})"; }
    ct_log "booted: $(ct_sh 'systemctl --version | sed -n 1p'), PID 1 is host PID $CT_PID"
}

# ct_sh 'COMMAND': run a shell command inside the container (all its namespaces), with a
# clean environment, as root. Standard input is passed on.
ct_sh() {
    [ -n "$CT_PID" ] || ct_die "container not booted"
    nsenter -t "$CT_PID" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive HOME=/root sh -c "$1"
}

# ct_wait SECONDS 'COMMAND': until the command succeeds inside, at most SECONDS.
ct_wait() {
    local deadline=$((SECONDS + $1))
    until ct_sh "$2" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.3
    done
}

ct_copy_in() { install -D -m "${3:-0644}" "$1" "$CT_ROOT$2"; }

# Debian's Postfix as a new user gets it ("Local only"), then the tests' settings: loopback
# only, every domain relayed to a closed loopback port (mail stays deferred, never leaves),
# long back-off (deferred mail stays put), no SMTP listener (the host's own test Postfix may
# hold 127.0.0.1:25), logging to syslog, i.e. the journal (Debian's default).
ct_install_postfix() {
    # policy-rc.d 101: the package must not start Postfix before the listener is removed.
    printf '#!/bin/sh\nexit 101\n' >"$CT_ROOT/usr/sbin/policy-rc.d"
    chmod 755 "$CT_ROOT/usr/sbin/policy-rc.d"
    ct_sh 'debconf-set-selections <<EOS
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string localhost.localdomain
postfix postfix/destinations string localhost
postfix postfix/protocols select ipv4
EOS
apt-get update -qq && apt-get install -y -qq postfix' >"$CT_DIR/apt-postfix.log" 2>&1 \
        || { tail -n 20 "$CT_DIR/apt-postfix.log" >&2; ct_die "apt-get install postfix failed"; }
    rm -f "$CT_ROOT/usr/sbin/policy-rc.d"
    ct_sh 'postconf -e "myhostname = localhost.localdomain" "mydestination = localhost" \
            "inet_interfaces = loopback-only" "inet_protocols = ipv4" \
            "mynetworks = 127.0.0.0/8" "smtp_dns_support_level = disabled" \
            "smtp_host_lookup = native" "relayhost = [127.0.0.1]:2" \
            "default_transport = smtp" "relay_transport = relay" \
            "queue_run_delay = 3600s" "minimal_backoff_time = 7200s" \
            "maximal_backoff_time = 14400s" "delay_warning_time = 0h" \
        && postconf -M# smtp/inet && postfix check \
        && systemctl restart postfix && systemctl is-active postfix@-.service' >/dev/null \
        || ct_die "Postfix did not start in the container"
    ct_log "postfix $(ct_sh 'postconf -h mail_version') running (postfix@-.service)"
}

# Queue truth inside the container: "queue count" for the five queues the methods report.
ct_queue_truth() {
    ct_sh 'for q in incoming active deferred hold maildrop; do
        echo "$q $(find /var/spool/postfix/$q -type f | wc -l)"; done'
}

ct_destroy() {
    # A container this shell did not start (a run left with PFDD_CT_KEEP=1, or killed): find
    # its processes by their root directory, so its file system is never removed under it.
    if [ -z "$CT_NSPAWN_PID" ] && [ -d "$CT_ROOT" ]; then
        local p
        for p in /proc/[0-9]*; do
            [ "$(readlink "$p/root" 2>/dev/null)" = "$CT_ROOT" ] || continue
            [ "$(cat "$p/comm" 2>/dev/null)" = systemd ] && CT_PID=${p#/proc/}
        done
        if [ -n "$CT_PID" ]; then
            CT_NSPAWN_PID=$(awk '{print $4}' "/proc/$CT_PID/stat" 2>/dev/null) || CT_NSPAWN_PID=
        fi
    fi
    if [ -n "$CT_NSPAWN_PID" ] && kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
        # SIGTERM to systemd-nspawn asks the container's systemd for a clean power-off.
        kill -TERM "$CT_NSPAWN_PID" 2>/dev/null || true
        local _
        for _ in $(seq 1 100); do kill -0 "$CT_NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
        # If it had to be killed, its PID 1 may live on: killing that ends the whole container.
        if [ -n "$CT_PID" ] && [ "$(readlink "/proc/$CT_PID/root" 2>/dev/null)" = "$CT_ROOT" ]; then
            kill -KILL "$CT_PID" 2>/dev/null || true
        fi
        kill -KILL "$CT_NSPAWN_PID" 2>/dev/null || true
        wait "$CT_NSPAWN_PID" 2>/dev/null || true
    fi
    CT_NSPAWN_PID='' CT_PID=''
    if [ -d "$CT_ROOT" ]; then
        # Mounts left by a killed nspawn would make rm fail or descend into the host.
        if grep -q " $CT_ROOT" /proc/mounts; then
            grep " $CT_ROOT" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l
        fi
        rm -rf --one-file-system "$CT_ROOT"
    fi
}
