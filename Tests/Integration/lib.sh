# Helpers for suite.sh. Runs inside the private mount namespace, as root.

PASSED=0
FAILED=0
FAILED_NAMES=()

pass() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$1"; }
fail() {
    FAILED=$((FAILED + 1)); FAILED_NAMES+=("$1"); printf '  FAIL  %s\n' "$1"
    [ -n "${2:-}" ] && printf '        %s\n' "$2" | head -20
    return 0
}

# matches TEXT PATTERN: TEXT matches the extended regex on one line, or across lines (grep -z,
# where . also matches a newline).
matches() { printf '%s' "$1" | grep -Eq -- "$2" || printf '%s' "$1" | grep -Ezq -- "$2"; }
# expect NAME TEXT PATTERN: passes when TEXT matches PATTERN.
expect() {
    if matches "$2" "$3"; then pass "$1"; else fail "$1" "wanted /$3/ in: $2"; fi
}
# expect_not NAME TEXT PATTERN
expect_not() {
    if matches "$2" "$3"; then fail "$1" "did not want /$3/ in: $2"; else pass "$1"; fi
}

section() { printf '\n%s\n' "$1"; }

# --- the sandbox: /etc, /dev/log and /run replaced inside this namespace only ---------------------

setup_sandbox() {
    mkdir -p "$WORK"/{etc,lib,store,home,ssh,keys,run,dev-up,dev-work}
    # Module installed as sudo requires: root-owned, 0644, in a root-owned directory. One file;
    # sudo_writ.so is a symlink to it, so glibc maps one copy into sudo (one copy of SQLite and of the code).
    install -o root -g root -m 0644 "$BUILD/pam_writ.so" "$WORK/lib/pam_writ.so"
    ln -s pam_writ.so "$WORK/lib/sudo_writ.so"
    MODULE=$WORK/lib/pam_writ.so
    PLUGIN=$WORK/lib/sudo_writ.so
    WRIT=$BUILD/writ
    STORE=$WORK/store/grants.db
    chmod 0700 "$WORK/store"

    # /etc: an overlay over the whole directory, so every change below (test users, pam.d,
    # sudoers, sudo.conf) lands in $WORK and vanishes with the namespace. Not bind mounts of single
    # files: those detach when the host replaces a file by rename, and a later write would then
    # reach the host's own file.
    mkdir -p "$WORK/etc-up" "$WORK/etc-work"
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$WORK/etc-up,workdir=$WORK/etc-work" /etc
    [ "$(findmnt -n -o FSTYPE /etc)" = overlay ] || { echo "FATAL: /etc is not an overlay here; not touching it" >&2; exit 1; }

    # The host's PAM services as they were, for the installer's test (a fresh host's pam.d).
    cp -a /etc/pam.d "$WORK/pam.d-host"

    # Test users exist only in this namespace's /etc/passwd, /etc/group, /etc/shadow.
    local uid=29001
    for u in writt_alice writt_bob writt_carol writt_dave; do
        mkdir -p "$WORK/home/$u"
        echo "$u:x:$uid:$uid:writ test user:$WORK/home/$u:/bin/sh" >>/etc/passwd
        echo "$u:x:$uid:" >>/etc/group
        echo "$u:*:19000:0:99999:7:::" >>/etc/shadow
        chown "$uid:$uid" "$WORK/home/$u"
        uid=$((uid + 1))
    done
    echo "writt_managed:x:29100:writt_alice,writt_bob,writt_dave" >>/etc/group

    # sudo: our own sudoers (NOPASSWD for the test users, so only Writ decides) and sudo.conf.
    cat >/etc/sudoers <<SUDOERS
Defaults env_reset, !lecture, !fqdn
Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
root ALL=(ALL:ALL) ALL
writt_alice,writt_bob,writt_carol,writt_dave ALL=(ALL:ALL) NOPASSWD: ALL
SUDOERS
    chmod 0440 /etc/sudoers
    : >/etc/sudo.conf

    # /var/log: an overlay, so the CLI's audit log (/var/log/writ/audit.jsonl) lands under $WORK.
    mkdir -p "$WORK/varlog-up" "$WORK/varlog-work"
    mount -t overlay overlay -o "lowerdir=/var/log,upperdir=$WORK/varlog-up,workdir=$WORK/varlog-work" /var/log
    AUDIT=/var/log/writ/audit.jsonl

    # /run: private tmpfs (sudo timestamps, sshd's privsep directory).
    mount -t tmpfs -o mode=0755 tmpfs /run
    mkdir -p /run/sshd && chmod 0755 /run/sshd

    # /dev/log: an overlay on /dev so a syslog catcher can listen without touching the real /dev.
    for sub in pts shm; do mkdir -p "$WORK/devsub-$sub"; mount --bind "/dev/$sub" "$WORK/devsub-$sub"; done
    mount -t overlay overlay -o "lowerdir=/dev,upperdir=$WORK/dev-up,workdir=$WORK/dev-work" /dev
    for sub in pts shm; do mount --bind "$WORK/devsub-$sub" "/dev/$sub"; done
    SYSLOG=$WORK/syslog.txt
    : >"$SYSLOG"
    python3 - "$SYSLOG" <<'PY' &
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    os.unlink("/dev/log")
except FileNotFoundError:
    pass
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        data = s.recv(65536)
        # A raw newline inside a record would be a forged log line: mark it visibly.
        out.write(data.replace(b"\n", b"<RAW-NEWLINE>") + b"\n")
PY
    SYSLOG_PID=$!
    for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.05; done

    "$WRIT" store init --store "$STORE" >/dev/null
}

teardown_sandbox() {
    [ -n "${SSHD_PID:-}" ] && kill "$SSHD_PID" 2>/dev/null
    [ -n "${WRITD_PID:-}" ] && kill "$WRITD_PID" 2>/dev/null
    [ -n "${SYSLOG_PID:-}" ] && kill "$SYSLOG_PID" 2>/dev/null
    wait 2>/dev/null || true
}

# syslog_since MARK: syslog lines written after MARK (a line count from syslog_mark).
syslog_mark() { wc -l <"$SYSLOG"; }
syslog_since() { sleep 0.1; tail -n +"$(($1 + 1))" "$SYSLOG"; }

# --- grants --------------------------------------------------------------------------------------

# Root's grants need a reason; scenarios that do not care about it get one.
grant() {
    case " $* " in *" --reason "*) ;; *) set -- "$@" --reason "integration test" ;; esac
    "$WRIT" grant add --store "$STORE" "$@"
}
revoke() { "$WRIT" grant revoke --store "$STORE" "$1" >/dev/null; }
# set_times and clear_grants: in state.sh.
now() { date +%s; }

# --- PAM -----------------------------------------------------------------------------------------

PAMDIR=
# pam_service NAME LINE...: writes a service file into a private confdir for pam_start_confdir.
pam_service() {
    PAMDIR=${PAMDIR:-$WORK/pamconf}
    mkdir -p "$PAMDIR"
    local name=$1; shift
    printf '%s\n' "$@" >"$PAMDIR/$name"
}
# pam_service_marked NAME MODULE-ARGS: the module followed by pam_echo, so a PAM_IGNORE from the
# module (stack goes on) prints "message[info]: writ-ignored", and its success or denial does not.
pam_service_marked() {
    pam_service "$1" "account [success=done ignore=ignore default=die] $MODULE $2" \
        "account optional pam_echo.so writ-ignored" "account required pam_permit.so"
}
# pam_check SERVICE USER [--silent]: prints the conversation and result=PAM_…
pam_check() { "$WORK/pam_harness" "$PAMDIR" "$@"; }

# --- sshd ----------------------------------------------------------------------------------------

# start_sshd DIR USER...: an sshd on a free loopback port with its own host key, public-key logins
# for USERs with DIR/client_key, PAM on (the caller writes /etc/pam.d/sshd). Sets SSHD_PID, PORT.
start_sshd() {
    local dir=$1; shift
    mkdir -p "$dir/keys"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
    local u
    for u in "$@"; do cp "$dir/client_key.pub" "$dir/keys/$u"; done
    chmod 0755 "$dir/keys"; chmod 0644 "$dir/keys/"*
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $PORT
HostKey $dir/host_key
PidFile $dir/sshd.pid
UsePAM yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $dir/keys/%u
StrictModes no
PermitRootLogin no
CONF
    /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" &
    SSHD_PID=$!
    for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
}
stop_sshd() { kill "$SSHD_PID" 2>/dev/null; wait "$SSHD_PID" 2>/dev/null; SSHD_PID=; }

# --- sudo ----------------------------------------------------------------------------------------

# as_user USER CMD...: runs CMD as USER with an environment the user controls.
as_user() { local u=$1; shift; runuser -u "$u" -- "$@"; }
# sudo_as USER ARGS...: "rc=N" then sudo's combined output.
sudo_as() {
    local u=$1; shift
    local out rc=0
    out=$(cd "$WORK/home/$u" && runuser -u "$u" -- sudo -n "$@" 2>&1) || rc=$?
    printf 'rc=%s\n%s' "$rc" "$out"
}

sudo_pam_stack() {
    # The sudo service: Writ's account check first, then the host's usual account stack.
    cat >/etc/pam.d/sudo <<PAM
#%PAM-1.0
auth       include    common-auth
account    required   $MODULE store=$STORE $*
account    include    common-account
session    required   pam_permit.so
PAM
}
sudo_pam_plain() {
    cat >/etc/pam.d/sudo <<PAM
#%PAM-1.0
auth       include    common-auth
account    include    common-account
session    required   pam_permit.so
PAM
}
sudo_conf_plugin() {
    cat >/etc/sudo.conf <<CONF
Plugin sudoers_policy sudoers.so
Plugin sudoers_io sudoers.so
Plugin sudoers_audit sudoers.so
Plugin writ_approval $PLUGIN store=$STORE $*
Plugin writ_audit $PLUGIN store=$STORE
CONF
}
sudo_conf_plain() { : >/etc/sudo.conf; }
