#!/usr/bin/env bash
# The Debian package, installed for real (needs root): scripts/build-deb.sh builds it from
# target/release/paddock; systemd-analyze verify checks the unit; dpkg -i makes the paddock
# user and /var/lib/paddock; the server runs with the unit's own command line, as the unit's
# user, from the packaged zoo.cfg, and serves zkCli-style commands from `paddock cli`; it stops
# on SIGTERM; dpkg --purge removes the binary, the unit, the configuration, the data and the
# user.
#
#   tests/packaging/deb.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fails=0
check() { # check NAME CMD...: run CMD, print ok/FAIL
    local name=$1
    shift
    if "$@" >/tmp/paddock-deb-check.out 2>&1; then
        echo "ok   $name"
    else
        echo "FAIL $name: $(tail -5 /tmp/paddock-deb-check.out)"
        fails=$((fails + 1))
    fi
}
[ "$(id -u)" -eq 0 ] || { echo "FAIL needs root (dpkg -i)"; exit 1; }
for tool in dpkg-deb systemd-analyze runuser; do
    command -v "$tool" >/dev/null || { echo "FAIL $tool is missing (scripts/install-deps.sh)"; exit 1; }
done

# A package left by an earlier run goes first.
if dpkg-query -W -f='${Status}' paddock 2>/dev/null | grep -q installed; then
    dpkg --purge paddock >/dev/null
fi
deb=$("$repo/scripts/build-deb.sh")
check "the package builds ($deb)" test -f "$deb"
check "it installs with dpkg" dpkg -i "$deb"
unit=/lib/systemd/system/paddock.service
check "systemd-analyze verify passes on the unit" systemd-analyze verify "$unit"
check "the paddock system user exists" getent passwd paddock
check "/var/lib/paddock belongs to it" test "$(stat -c %U "$(readlink -f /var/lib/paddock)")" = paddock
check "/etc/paddock/zoo.cfg is a conffile" grep -qx /etc/paddock/zoo.cfg /var/lib/dpkg/info/paddock.conffiles

exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
workdir=$(sed -n 's/^WorkingDirectory=//p' "$unit")
check "the unit runs /usr/bin/paddock server /etc/paddock/zoo.cfg as paddock" \
    test "$exec_start $user" = "/usr/bin/paddock server /etc/paddock/zoo.cfg paddock"
log=$(mktemp)
# The unit's own command line, as its user, from its working directory.
(cd "$workdir" && exec runuser -u "$user" -- $exec_start) >"$log" 2>&1 &
pid=$!
up() {
    for _ in $(seq 100); do
        [ "$(echo ruok | nc -q1 127.0.0.1 2181 2>/dev/null)" = imok ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
check "the server answers ruok on 127.0.0.1:2181" up
check "a client writes and reads" bash -c \
    "/usr/bin/paddock cli -server 127.0.0.1:2181 create /packaged hello &&
     /usr/bin/paddock cli -server 127.0.0.1:2181 get /packaged | grep -qx hello"
check "the data is in /var/lib/paddock, the user's" bash -c \
    "find /var/lib/paddock -type f -newer $unit | grep -q . &&
     test -z \"\$(find /var/lib/paddock ! -user paddock)\""
check "the AdminServer answers on 127.0.0.1:8080" bash -c \
    "/usr/bin/paddock admin ruok | grep -q '\"command\": \"ruok\"'"
kill -TERM "$pid"
stopped() { for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done; return 1; }
check "SIGTERM stops it" stopped
kill -KILL "$pid" 2>/dev/null || true
check "dpkg --purge removes it" dpkg --purge paddock
check "nothing is left: binary, unit, configuration, data, user" bash -c \
    "! test -e /usr/bin/paddock && ! test -e $unit && ! test -e /etc/paddock/zoo.cfg &&
     ! test -e /var/lib/paddock && ! getent passwd paddock && ! getent group paddock"
if [ "$fails" -ne 0 ]; then
    echo "--- server log"
    tail -20 "$log"
fi
rm -f "$log"
echo "deb: $fails failed"
[ "$fails" -eq 0 ]
