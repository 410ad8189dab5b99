#!/usr/bin/env bash
# Install what the conformance tests need, on a Debian machine as root:
#   - Apache ZooKeeper 3.8 (Debian's `zookeeper` package: server jars + zkCli.sh),
#     the reference server and the Java client used by tests/zkcli
#   - a Java runtime (Debian's default-jre, i.e. OpenJDK 17 on bookworm)
#   - netcat-openbsd (4lw commands, readiness probes)
#   - Jetty and the servlet API (ZooKeeper's AdminServer), Prometheus (tests/ops)
#   - MIT Kerberos (krb5-kdc, krb5-admin-server, krb5-user, libkrb5-dev): a throwaway realm
#     for the GSSAPI tests
#   - .venv: Python venv with kazoo 2.11.0 and its test suite's needs
#     (tests/kazoo/requirements.txt, all pinned)
# Idempotent and quiet; when everything is present it only checks and returns.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$repo/.venv
reqs=$repo/tests/kazoo/requirements.txt
python=${PYTHON:-python3}

log() { echo "install-deps: $*"; }

# ---- Debian packages -------------------------------------------------------
pkgs=()
[ -f /usr/share/java/zookeeper.jar ] && [ -x /usr/share/zookeeper/bin/zkCli.sh ] || pkgs+=(zookeeper)
[ -x /usr/bin/java ] || pkgs+=(default-jre-headless)
# ZooKeeper's AdminServer (the reference tests/ops/admin.py compares with) runs on Jetty and
# the servlet API, which the zookeeper package does not pull in.
[ -f /usr/share/java/servlet-api.jar ] || pkgs+=(libservlet-api-java)
[ -f /usr/share/java/jetty9-server.jar ] || pkgs+=(libjetty9-java)
# A real Prometheus scrapes an ensemble in tests/ops/prometheus.py (promtool comes with it).
command -v prometheus >/dev/null || pkgs+=(prometheus)
# Headless Chromium and its WebDriver for the web console's test (tests/ops/console.py).
command -v chromium >/dev/null || pkgs+=(chromium)
command -v chromedriver >/dev/null || pkgs+=(chromium-driver)
# The Debian package test (tests/packaging/deb.sh): systemd-analyze checks the unit, objcopy
# strips the binary.
command -v systemd-analyze >/dev/null || pkgs+=(systemd)
command -v objcopy >/dev/null || pkgs+=(binutils)
# The ZooKeeper C client, for tests/cclient.
[ -f /usr/include/zookeeper/zookeeper.h ] || pkgs+=(libzookeeper-mt-dev)
# openssl makes the PKCS12 stores of tests/security (keytool comes with the JRE).
command -v openssl >/dev/null || pkgs+=(openssl)
dpkg-query -W -f='${Status}' netcat-openbsd 2>/dev/null | grep -q 'ok installed' || pkgs+=(netcat-openbsd)
# A Kerberos realm for kazoo's GSSAPI tests (tests/security/kdc.sh): the KDC, kadmin.local
# (in the admin server package), kinit, and the headers PyPI's `kerberos` builds against.
command -v krb5kdc >/dev/null || pkgs+=(krb5-kdc)
command -v kadmin.local >/dev/null || pkgs+=(krb5-admin-server)
command -v kinit >/dev/null || pkgs+=(krb5-user)
[ -f /usr/include/gssapi/gssapi.h ] || pkgs+=(libkrb5-dev)
# Network namespaces and veth pairs for tests/ensemble/partition.sh.
command -v ip >/dev/null || pkgs+=(iproute2)
command -v "$python" >/dev/null || { pkgs+=(python3 python3-venv python3-dev); python=python3; }
if command -v "$python" >/dev/null; then
    # Debian's own python3 ships venv/ensurepip and the C headers separately.
    "$python" -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
    "$python" -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
        2>/dev/null || pkgs+=(python3-dev)
fi
# twofish (needed by pyjks, which the kazoo harness uses for its TLS keystores) has no wheel.
command -v cc >/dev/null || pkgs+=(gcc)

if [ ${#pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to install: ${pkgs[*]}" >&2
        exit 1
    fi
    log "apt-get install ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# ---- Python venv -----------------------------------------------------------
# Reinstall only when requirements.txt or the interpreter changed.
stamp=$venv/.install-deps-stamp
want="$(sha256sum "$reqs" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
log "setting up $venv"
have=$("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || true)
if [ "$have" != "${want#* }" ]; then
    "$python" -m venv --clear "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --use-pep517 -r "$reqs"
"$venv/bin/python" -W ignore -c 'import kazoo, kazoo.tests, pytest, OpenSSL, jks, gevent, eventlet, puresasl, kerberos' >/dev/null
echo "$want" >"$stamp"
