#!/usr/bin/env python3
"""Kerberos end to end, against a realm of the test's own (tests/security/kdc.sh: Debian's MIT
krb5-kdc, realm KAZOOTEST.ORG):

- clients: ZooKeeper 3.8's Java client (zkCli's ZooKeeperMain, a JAAS Client section with a
  keytab) creates a node only its principal may read; `paddock cli` reads it with the same
  keytab, and with the tickets `kinit` left; without Kerberos it may not; `paddock bench`
  runs by Kerberos where SASL is enforced; a server whose keytab lacks its principal's keys
  does not start.
- between servers: an ensemble whose servers hold keytabs for zkquorum/127.0.0.N, and a
  server that shows another server's principal is refused (ZooKeeper's CVE-2023-44981).
(kazoo's own GSSAPI tests run in the kazoo suites, against a realm tests/kazoo/run.sh makes.)

  tests/security/kerberos.py [--bin target/release/paddock] [--keep]
"""

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check import Server, bench_clean, case, failures, zkcli  # noqa: E402
from quorum import SASL_ON, Ensemble, elects, refused_member, replicates  # noqa: E402


def krb_jaas(work, kdc, sid, as_sid=None):
    """Quorum JAAS sections with server `as_sid`'s keytab and principal (its own by default)."""
    as_sid = as_sid or sid
    module = ("com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true "
              f'keyTab="{kdc}/quorum{as_sid}.keytab" storeKey=true useTicketCache=false '
              f'principal="zkquorum/127.0.0.{as_sid}@KAZOOTEST.ORG"')
    p = os.path.join(work, f"jaas-krb-{sid}-as-{as_sid}.conf")
    with open(p, "w") as f:
        f.write(f"QuorumServer {{\n  {module};\n}};\nQuorumLearner {{\n  {module};\n}};\n")
    return [f"java.security.auth.login.config={p}", f"java.security.krb5.conf={kdc}/krb5.conf",
            "quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST"] + SASL_ON


def client_jaas(work, name, body):
    p = os.path.join(work, name)
    with open(p, "w") as f:
        f.write("Client {\n  com.sun.security.auth.module.Krb5LoginModule required\n"
                f"  {body};\n}};\n")
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                  "target", "release", "paddock"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="paddock-kerberos-")
    here = os.path.dirname(os.path.abspath(__file__))
    kdc = os.path.join(work, "kdc")
    ensembles, servers = [], []

    def ensemble(name):
        e = Ensemble(binary, work, name)
        ensembles.append(e)
        return e

    out = subprocess.run([os.path.join(here, "kdc.sh"), "start", kdc], capture_output=True,
                         text=True)
    case("a Kerberos realm for the test (krb5-kdc)", out.returncode == 0, out.stderr[-600:])
    env = dict(os.environ, KRB5_CONFIG=f"{kdc}/krb5.conf", KRB5CCNAME=f"FILE:{kdc}/ccache")
    try:
        # ---- Kerberos for clients --------------------------------------------------------
        server_jaas = os.path.join(work, "jaas-server.conf")
        with open(server_jaas, "w") as f:
            f.write("Server {\n  com.sun.security.auth.module.Krb5LoginModule required\n"
                    f'  useKeyTab=true keyTab="{kdc}/server-localhost.keytab" storeKey=true\n'
                    '  useTicketCache=false principal="zookeeper/localhost@KAZOOTEST.ORG";\n};\n')
        s = Server(binary, work, "clients", [
            "clientPort={port}",
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            f"java.security.auth.login.config={server_jaas}",
            f"java.security.krb5.conf={kdc}/krb5.conf"])
        servers.append(s)
        s.wait_listening(s.port)
        keytab = client_jaas(work, "jaas-client.conf",
                             f'useKeyTab=true keyTab="{kdc}/client.keytab" '
                             'principal="client@KAZOOTEST.ORG"')
        java = [f"-Djava.security.auth.login.config={keytab}",
                f"-Djava.security.krb5.conf={kdc}/krb5.conf"]
        out = zkcli(s.port, "create", "/krb", "for-client-only", "sasl:client@KAZOOTEST.ORG:cdrwa",
                    props=java)
        case("zkCli (the Java client) authenticates by Kerberos and creates a node with a "
             "sasl ACL", "Created /krb" in out, out[-800:])

        def cli(jaas, *cmd):
            argv = [binary, "cli"] + ([f"-Djava.security.auth.login.config={jaas}"] if jaas
                                      else [])
            r = subprocess.run(argv + ["-timeout", "5000", "-server", f"localhost:{s.port}",
                                       *cmd], capture_output=True, text=True, timeout=60,
                               env=env)
            return r.stdout + r.stderr

        out = cli(keytab, "get", "/krb")
        case("paddock cli reads it by Kerberos with the same keytab", "for-client-only" in out,
             out[-600:])
        subprocess.run(["kinit", "-kt", f"{kdc}/client.keytab", "client"], env=env, check=True)
        cache = client_jaas(work, "jaas-cache.conf", "useTicketCache=true")
        out = cli(cache, "get", "/krb")
        case("paddock cli reads it with the tickets kinit left", "for-client-only" in out,
             out[-600:])
        out = cli(None, "get", "/krb")
        case("without Kerberos it may not", "for-client-only" not in out
             and "Insufficient permission" in out, out[-600:])
        text = s.text()
        case("the server logs the principal it authenticated",
             "principal=\"client@KAZOOTEST.ORG\"" in text and "GSSAPI" in text, text[-600:])
        s.stop()

        # auth_to_local rules and the realm switch shape the identity, as in ZooKeeper.
        mapped = Server(binary, work, "rules", [
            "clientPort={port}",
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            f"java.security.auth.login.config={server_jaas}",
            f"java.security.krb5.conf={kdc}/krb5.conf",
            "kerberos.removeRealmFromPrincipal=true",
            "security.auth_to_local=RULE:[1:$1@$0](client@KAZOOTEST\\.ORG)s/.*/app/ DEFAULT"])
        servers.append(mapped)
        mapped.wait_listening(mapped.port)
        r = subprocess.run([binary, "cli", f"-Djava.security.auth.login.config={keytab}",
                            "-server", f"localhost:{mapped.port}", "whoami"],
                           capture_output=True, text=True, timeout=60, env=env)
        case("auth_to_local and kerberos.removeRealmFromPrincipal: client@KAZOOTEST.ORG is "
             "sasl:app", "sasl: app\n" in r.stdout, (r.stdout + r.stderr)[-600:])
        mapped.stop()

        # paddock bench authenticates by Kerberos too: under enforcement every request of a
        # bench that did not would be refused. (The bench names servers by address, so this
        # server's principal is zookeeper/127.0.0.1.)
        ip_jaas = os.path.join(work, "jaas-server-ip.conf")
        with open(ip_jaas, "w") as f:
            f.write("Server {\n  com.sun.security.auth.module.Krb5LoginModule required\n"
                    f'  useKeyTab=true keyTab="{kdc}/server.keytab" storeKey=true\n'
                    '  principal="zookeeper/127.0.0.1@KAZOOTEST.ORG";\n};\n')
        enforced = Server(binary, work, "bench", [
            "clientPort={port}", "sessionRequireClientSASLAuth=true",
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            f"java.security.auth.login.config={ip_jaas}",
            f"java.security.krb5.conf={kdc}/krb5.conf"])
        servers.append(enforced)
        enforced.wait_listening(enforced.port)
        r = subprocess.run([binary, "bench", "run", f"-Djava.security.auth.login.config={keytab}",
                            "--server", f"127.0.0.1:{enforced.port}",
                            "--workloads", "create,getdata", "--sessions", "4", "--duration",
                            "1s", "--warmup", "0s", "--format", "json", "--quiet"],
                           capture_output=True, text=True, timeout=120, env=env)
        case("paddock bench authenticates by Kerberos where SASL is enforced, and runs",
             r.returncode == 0 and bench_clean(r.stdout, 2), (r.stdout + r.stderr)[-800:])
        enforced.stop()

        wrong = os.path.join(work, "jaas-wrong.conf")
        with open(wrong, "w") as f:
            f.write("Server {\n  com.sun.security.auth.module.Krb5LoginModule required\n"
                    f'  useKeyTab=true keyTab="{kdc}/client.keytab"\n'
                    '  principal="zookeeper/localhost@KAZOOTEST.ORG";\n};\n')
        b = Server(binary, work, "wrong-keytab", [
            "clientPort={port}", f"java.security.auth.login.config={wrong}",
            f"java.security.krb5.conf={kdc}/krb5.conf"])
        servers.append(b)
        rc = b.wait_exit()
        case("refused at start: a keytab without the server principal's keys",
             rc not in (None, 0) and "java.security.auth.login.config" in b.text()
             and "zookeeper/localhost" in b.text(), f"rc={rc} {b.text()[-600:]}")

        # ---- Kerberos between servers --------------------------------------------------
        e = ensemble("krb")
        for sid, m in e.members.items():
            m.start(krb_jaas(work, kdc, sid))
        elects(e, "quorum Kerberos: three servers authenticate each other and elect",
               e.members[1].text()[-800:])
        case("quorum Kerberos: a write through one server is read on another",
             replicates(e, "/over-kerberos", 3, 1))
        e.stop()

        e = ensemble("krb-impostor")
        for sid, m in e.members.items():
            m.start(krb_jaas(work, kdc, sid, as_sid=2 if sid == 3 else sid))
        refused_member(e, "a server with another server's Kerberos principal (CVE-2023-44981)",
                       "names host 127.0.0.2, not 127.0.0.3")
        e.stop()
    finally:
        subprocess.run([os.path.join(here, "kdc.sh"), "stop", kdc], capture_output=True)
        for en in ensembles:
            en.stop()
        for s in servers:
            s.stop()
        if args.keep or failures:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"kerberos: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
