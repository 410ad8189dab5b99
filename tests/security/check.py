#!/usr/bin/env python3
"""TLS and SASL for clients, end to end, with real parts: certificates made here
(cryptography), stores in every format ZooKeeper reads (PEM, PKCS12 by openssl, JKS by Java's
own keytool), `paddock server` processes, and real clients: kazoo, Python's ssl module, and
ZooKeeper 3.8's Java client (zkCli's ZooKeeperMain, Debian's package) over TLS with PEM stores
and with SASL DIGEST-MD5 from a JAAS file.

Each case prints one line; the script exits non-zero if any fails.

  tests/security/check.py [--bin target/release/paddock] [--keep]
"""

import argparse
import datetime
import os
import random
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kazoo.client import KazooClient

STORE_PW = "s3cret-store-pw"
SASL_PW = "jaas-pw-7f3a"
PW_FILE_PW = "pw-from-a-file"
failures = []


def case(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")
    if not ok:
        failures.append(name)


# ---- certificates ----------------------------------------------------------------------

def key():
    return ec.generate_private_key(ec.SECP256R1())


def cert(subject_cn, pub, issuer_cert, issuer_key, ca=False, san=None, days=(-1, 30)):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    b = (x509.CertificateBuilder()
         .subject_name(name)
         .issuer_name(issuer_cert.subject if issuer_cert else name)
         .public_key(pub)
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days[0]))
         .not_valid_after(now + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def pem_cert(c):
    return c.public_bytes(serialization.Encoding.PEM)


def pem_key(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def make_pki(d):
    ca_key = key()
    ca = cert("Paddock Test CA", ca_key.public_key(), None, ca_key, ca=True)
    other_ca_key = key()
    other_ca = cert("Someone Else's CA", other_ca_key.public_key(), None, other_ca_key, ca=True)
    srv_key = key()
    srv = cert("localhost", srv_key.public_key(), ca, ca_key,
               san=[x509.DNSName("localhost"),
                    x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))])
    cli_key = key()
    cli = cert("client", cli_key.public_key(), ca, ca_key)
    stranger_key = key()
    stranger = cert("stranger", stranger_key.public_key(), other_ca, other_ca_key)
    expired_key = key()
    expired = cert("expired", expired_key.public_key(), ca, ca_key, days=(-30, -1))
    files = {}

    def write(name, data):
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(data)
        files[name] = p
        return p

    write("ca.pem", pem_cert(ca))
    # A second server certificate, for the rotation case.
    srv2_key = key()
    srv2 = cert("localhost", srv2_key.public_key(), ca, ca_key,
                san=[x509.DNSName("localhost"),
                     x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))])
    write("server2.pem", pem_key(srv2_key) + pem_cert(srv2) + pem_cert(ca))
    files["server.der"] = srv.public_bytes(serialization.Encoding.DER)
    # X.509 v1 client certificates, as kazoo's harness and old PKIs make them (pyOpenSSL
    # writes v1 unless told otherwise): one from our CA, one from another, one expired.
    import OpenSSL.crypto as oc
    for name, (issuer_cert, issuer_key), (start_s, end_s) in [
            ("v1", (ca, ca_key), (-3600, 86400)),
            ("v1-stranger", (other_ca, other_ca_key), (-3600, 86400)),
            ("v1-expired", (ca, ca_key), (-86400, -3600))]:
        k = oc.PKey()
        k.generate_key(oc.TYPE_RSA, 2048)
        c = oc.X509()
        c.get_subject().CN = name
        c.set_serial_number(x509.random_serial_number())
        c.gmtime_adj_notBefore(start_s)
        c.gmtime_adj_notAfter(end_s)
        c.set_issuer(oc.X509.from_cryptography(issuer_cert).get_subject())
        c.set_pubkey(k)
        c.sign(oc.PKey.from_cryptography_key(issuer_key), "sha256")
        assert c.get_version() == 0  # v1
        write(f"{name}.key", oc.dump_privatekey(oc.FILETYPE_PEM, k))
        write(f"{name}.crt", oc.dump_certificate(oc.FILETYPE_PEM, c))
    files["server2.der"] = srv2.public_bytes(serialization.Encoding.DER)
    write("server.pem", pem_key(srv_key) + pem_cert(srv) + pem_cert(ca))
    # A subject that exercises Java's RFC 2253 rules: a multi-valued RDN, characters to
    # escape, a leading space, and an attribute without an RFC 2253 keyword (emailAddress).
    fancy_key = key()
    fancy_name = x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                                           "Acme, Inc. <R&D>")]),
        x509.RelativeDistinguishedName([
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Eng"),
            x509.NameAttribute(NameOID.USER_ID, "u42")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS,
                                                           "ops@example.com")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME,
                                                           " #fancy=client;")]),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    fancy = (x509.CertificateBuilder().subject_name(fancy_name).issuer_name(ca.subject)
             .public_key(fancy_key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .sign(ca_key, hashes.SHA256()))
    client2_key = key()
    client2 = cert("client2", client2_key.public_key(), ca, ca_key)
    for n, k, c in [("client", cli_key, cli), ("stranger", stranger_key, stranger),
                    ("expired", expired_key, expired), ("fancy", fancy_key, fancy),
                    ("client2", client2_key, client2)]:
        write(f"{n}.key", pem_key(k))
        write(f"{n}.crt", pem_cert(c))
        write(f"{n}-bundle.pem", pem_key(k) + pem_cert(c))
    # PKCS12 by openssl, as operators make them (and JKS from it by keytool, below).
    write("server.key", pem_key(srv_key))
    write("server.crt", pem_cert(srv) + pem_cert(ca))
    files["server.p12"] = os.path.join(d, "server.p12")
    subprocess.run(["openssl", "pkcs12", "-export", "-inkey", files["server.key"],
                    "-in", files["server.crt"], "-name", "server", "-out", files["server.p12"],
                    "-passout", f"pass:{STORE_PW}"], check=True, capture_output=True)
    # JKS and the truststores by Java's keytool: the formats as Java writes them.
    def keytool(*a):
        subprocess.run(["keytool", "-noprompt", *a], check=True, capture_output=True)

    keytool("-importkeystore", "-srckeystore", files["server.p12"], "-srcstoretype", "PKCS12",
            "-srcstorepass", STORE_PW, "-destkeystore", os.path.join(d, "server.jks"),
            "-deststoretype", "JKS", "-deststorepass", STORE_PW, "-destkeypass", STORE_PW)
    files["server.jks"] = os.path.join(d, "server.jks")
    for name, kind, pw in [("trust.jks", "JKS", STORE_PW), ("trust.p12", "PKCS12", STORE_PW),
                           ("trust-pwfile.p12", "PKCS12", PW_FILE_PW)]:
        files[name] = os.path.join(d, name)
        keytool("-importcert", "-alias", "ca", "-file", files["ca.pem"], "-keystore",
                files[name], "-storetype", kind, "-storepass", pw)
    write("store.pw", (PW_FILE_PW + "\n").encode())
    return files


# ---- servers -----------------------------------------------------------------------------

_handed_out = set()


def free_port():
    """A port free now, never handed out before by this process, and below the kernel's
    ephemeral range (32768 and up), so that no outgoing connection takes it before the server
    it is meant for binds it. (Asking the kernel for port 0 can give the same port twice, and
    a server whose quorum and election ports coincide cannot start: seen as a CI flake.)"""
    while True:
        p = random.randint(20000, 32000)
        if p in _handed_out:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        _handed_out.add(p)
        return p


class Server:
    def __init__(self, binary, work, name, lines):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.secure = free_port(), free_port()
        cfg = [f"dataDir={self.dir}/data", "tickTime=200", "initLimit=5", "syncLimit=2",
               "clientPortAddress=127.0.0.1"]
        cfg += [l.format(port=self.port, secure=self.secure) for l in lines]
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.log = os.path.join(self.dir, "server.log")
        self.proc = subprocess.Popen([binary, "server", self.cfg], stdout=open(self.log, "wb"),
                                     stderr=subprocess.STDOUT)

    def wait_exit(self, timeout=10):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def wait_listening(self, port):
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not listen")

    def text(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def kazoo(port, files, who="client", tls=True, timeout=5):
    kw = {}
    if tls:
        kw = dict(use_ssl=True, ca=files["ca.pem"], certfile=files.get(f"{who}.crt"),
                  keyfile=files.get(f"{who}.key"), verify_certs=True)
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=timeout, **kw)
    zk.start(timeout=timeout)
    return zk


def round_trip(port, files, path, **kw):
    zk = kazoo(port, files, **kw)
    try:
        zk.create(path, b"v", makepath=True)
        return zk.get(path)[0] == b"v"
    finally:
        zk.stop()
        zk.close()


ZK_JARS = "/usr/share/java"


def zkcli(port, *command, props=()):
    """Runs one zkCli command with ZooKeeper 3.8's Java client; returns its output."""
    cp = ":".join(f"{ZK_JARS}/{j}.jar" for j in [
        "zookeeper", "zookeeper-jute", "netty-codec", "netty-resolver", "netty-buffer",
        "netty-common", "netty-handler", "netty-transport", "netty-transport-native-unix-common",
        "netty-transport-native-epoll", "slf4j-api", "slf4j-log4j12", "log4j-1.2",
        "commons-cli", "metrics-core", "snappy-java"])
    r = subprocess.run(["java", "-cp", cp, "-Dlog4j.configuration=file:/dev/null", *props,
                        "org.apache.zookeeper.ZooKeeperMain", "-server", f"127.0.0.1:{port}",
                        *command], capture_output=True, timeout=60)
    return (r.stdout + r.stderr).decode(errors="replace")


def java_tls_props(files, who="client"):
    return ["-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
            "-Dzookeeper.client.secure=true",
            f"-Dzookeeper.ssl.keyStore.location={files[f'{who}-bundle.pem']}",
            "-Dzookeeper.ssl.keyStore.type=PEM",
            f"-Dzookeeper.ssl.trustStore.location={files['ca.pem']}",
            "-Dzookeeper.ssl.trustStore.type=PEM"]


def tls_socket(port, files, who=None, max_version=None):
    ctx = ssl.create_default_context(cafile=files["ca.pem"])
    if who:
        ctx.load_cert_chain(files[f"{who}.crt"], files[f"{who}.key"])
    if max_version:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = max_version
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    raw = socket.create_connection(("127.0.0.1", port), 5)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def connect_request():
    # protocolVersion, lastZxidSeen, timeOut, sessionId, passwd (16 zero bytes), readOnly
    body = struct.pack(">iqiqi", 0, 0, 10000, 0, 16) + b"\0" * 16 + b"\0"
    return struct.pack(">i", len(body)) + body


def closed_by_server(sock):
    """Whether the server closes (or resets) the connection within the socket's timeout; a
    timeout is not a close."""
    try:
        return sock.recv(10) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def write_jaas(path, section, module_options):
    """A JAAS file with one DigestLoginModule section, as ZooKeeper's are written."""
    with open(path, "w") as f:
        f.write(f"{section} {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n"
                f"  {module_options};\n}};\n")
    return path


def raw_session(port):
    """A plaintext session over a raw socket, its handshake done."""
    sock = socket.create_connection(("127.0.0.1", port), 5)
    sock.sendall(connect_request())
    n = struct.unpack(">i", recv_exact(sock, 4))[0]
    recv_exact(sock, n)
    return sock


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def call(sock, xid, op, body):
    """Sends one request; returns (err, reply body)."""
    payload = struct.pack(">ii", xid, op) + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    while True:
        n = struct.unpack(">i", recv_exact(sock, 4))[0]
        reply = recv_exact(sock, n)
        rxid, _zxid, err = struct.unpack(">iqi", reply[:16])
        if rxid == xid:
            return err, reply[16:]


def buffer(b):
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def raw_sasl(sock, user, password):
    """A DIGEST-MD5 exchange as kazoo runs it (puresasl); returns the last reply's error."""
    import puresasl.client
    cli = puresasl.client.SASLClient("zk-sasl-md5", "zookeeper", mechanism="DIGEST-MD5",
                                     username=user, password=password)
    challenge, xid = None, 0
    while not cli.complete:
        response = cli.process(challenge) or b""
        xid += 1
        err, body = call(sock, xid, 102, buffer(response))
        if err:
            return err
        n = struct.unpack(">i", body[:4])[0]
        challenge = body[4:4 + n] if n >= 0 else None
        if challenge is None:
            return 0
    return 0


def get_data(sock, xid, path):
    p = path.encode()
    return call(sock, xid, 4, struct.pack(">i", len(p)) + p + b"\0")[0]


def bench_clean(stdout, workloads):
    """Whether `paddock bench --format json` ran every workload with operations and no error."""
    import json
    rows = [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]
    rows = [r for r in rows if r.get("kind") == "workload"]
    return len(rows) == workloads and all(r["errors"] == 0 and r["ops"] > 0 for r in rows)


def handshake_refused(fn):
    """True if the TLS handshake or the first exchange after it fails (a server that neither
    answers nor refuses within the timeout has not refused)."""
    try:
        s = fn()
        s.sendall(connect_request())
        data = s.recv(100)
        s.close()
        return data == b""
    except socket.timeout:
        return False
    except OSError:  # ssl.SSLError included
        return True


# ---- cases -------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                  "target", "release", "paddock"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="paddock-security-")
    files = make_pki(work)
    servers = []

    def start(name, lines):
        s = Server(binary, work, name, lines)
        servers.append(s)
        return s

    try:
        # Every store format, as a secured ZooKeeper's zoo.cfg names them.
        formats = {
            "jks": [f"ssl.keyStore.location={files['server.jks']}",
                    f"ssl.keyStore.password={STORE_PW}",
                    f"ssl.trustStore.location={files['trust.jks']}",
                    f"ssl.trustStore.password={STORE_PW}"],
            "pkcs12": [f"ssl.keyStore.location={files['server.p12']}",
                       f"ssl.keyStore.password={STORE_PW}",
                       f"ssl.trustStore.location={files['ca.pem']}",
                       "ssl.trustStore.type=PEM"],
            "pem": [f"ssl.keyStore.location={files['server.pem']}",
                    f"ssl.trustStore.location={files['trust-pwfile.p12']}",
                    f"ssl.trustStore.passwordPath={files['store.pw']}",
                    "ssl.trustStore.type=PKCS12"],
        }
        for kind, lines in formats.items():
            s = start(kind, ["clientPort={port}", "secureClientPort={secure}"] + lines)
            s.wait_listening(s.secure)
            case(f"{kind} stores: a kazoo client with a certificate reads and writes over TLS",
                 round_trip(s.secure, files, f"/tls/{kind}"))
            case(f"{kind} stores: the plaintext port still serves",
                 round_trip(s.port, files, f"/plain/{kind}", tls=False))
            s.stop()

        main_srv = start("main", ["clientPort={port}", "secureClientPort={secure}"]
                         + formats["jks"])
        main_srv.wait_listening(main_srv.secure)
        port, secure = main_srv.port, main_srv.secure
        out = zkcli(secure, "create", "/java-tls", "v", props=java_tls_props(files))
        case("zkCli (Java client, PEM stores) creates a node over TLS",
             "Created /java-tls" in out, out[-800:])
        # paddock bench speaks TLS from the Java client's properties, as paddock cli does.
        r = subprocess.run([binary, "bench", "run", "-Dzookeeper.client.secure=true",
                            f"-Dzookeeper.ssl.trustStore.location={files['ca.pem']}",
                            f"-Dzookeeper.ssl.keyStore.location={files['client-bundle.pem']}",
                            "--server", f"127.0.0.1:{secure}", "--workloads", "create,getdata",
                            "--sessions", "4", "--duration", "1s", "--warmup", "0s",
                            "--format", "json", "--quiet"],
                           capture_output=True, text=True, timeout=120)
        case("paddock bench runs over TLS with PEM stores (client properties)",
             r.returncode == 0 and bench_clean(r.stdout, 2), (r.stdout + r.stderr)[-800:])
        out = zkcli(secure, "get", "/java-tls", props=java_tls_props(files, "stranger"))
        case("zkCli with a certificate from another CA is refused",
             "Created" not in out and "\nv\n" not in out, out[-800:])
        # Paddock's own tools over TLS, with the Java client's properties.
        tls_props = ["-Dzookeeper.client.secure=true",
                     f"-Dzookeeper.ssl.trustStore.location={files['ca.pem']}",
                     f"-Dzookeeper.ssl.keyStore.location={files['client-bundle.pem']}"]
        r = subprocess.run([binary, "cli", *tls_props, "-server", f"127.0.0.1:{secure}",
                            "create", "/cli-tls", "v"], capture_output=True, text=True,
                           timeout=60)
        case("paddock cli creates a node over TLS", "Created /cli-tls" in r.stdout + r.stderr,
             (r.stdout + r.stderr)[-600:])
        env = dict(os.environ, CLIENT_JVMFLAGS=" ".join(tls_props))
        r = subprocess.run([binary, "lock", "/tls-lock", "--server", f"127.0.0.1:{secure}",
                            "--", "true"], capture_output=True, text=True, timeout=60, env=env)
        case("paddock lock takes a lock over TLS (CLIENT_JVMFLAGS)", r.returncode == 0,
             (r.stdout + r.stderr)[-600:])
        bad = [p.replace(files["client-bundle.pem"], files["stranger-bundle.pem"])
               for p in tls_props]
        r = subprocess.run([binary, "cli", *bad, "-timeout", "3000", "-server",
                            f"127.0.0.1:{secure}", "create", "/cli-bad", "v"],
                           capture_output=True, text=True, timeout=60)
        case("paddock cli with a certificate from another CA gets no session",
             "Created" not in r.stdout + r.stderr, (r.stdout + r.stderr)[-600:])
        watcher = kazoo(secure, files)
        watcher.create("/others", b"0")
        case("no client certificate where clientAuth=need is refused",
             handshake_refused(lambda: tls_socket(secure, files)))
        case("a certificate from another CA is refused",
             handshake_refused(lambda: tls_socket(secure, files, "stranger")))
        case("an X.509 v1 certificate from the trusted CA is served (as Java serves it)",
             round_trip(secure, files, "/v1", who="v1"))
        case("an X.509 v1 certificate from another CA is refused",
             handshake_refused(lambda: tls_socket(secure, files, "v1-stranger")))
        case("an expired X.509 v1 certificate is refused",
             handshake_refused(lambda: tls_socket(secure, files, "v1-expired")))
        case("an expired certificate is refused",
             handshake_refused(lambda: tls_socket(secure, files, "expired")))
        case("TLS 1.1 is refused",
             handshake_refused(lambda: tls_socket(secure, files, "client",
                                                  ssl.TLSVersion.TLSv1_1)))
        # Plaintext to the TLS port: a ConnectRequest gets no answer, only a close.
        raw = socket.create_connection(("127.0.0.1", secure), 5)
        raw.sendall(connect_request())
        try:
            got = raw.recv(100)
        except OSError:
            got = b""
        raw.close()
        case("plaintext to the TLS port gets no session", not got.startswith(b"\0\0\0"),
             repr(got[:20]))
        case("TLS to the plaintext port fails",
             handshake_refused(lambda: tls_socket(port, files, "client")))
        # A truncated handshake and a slowloris: held open, then dropped at the handshake
        # timeout (initLimit * tickTime = 1 s), while others are served meanwhile.
        hello_part = socket.create_connection(("127.0.0.1", secure), 5)
        hello_part.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        slow = socket.create_connection(("127.0.0.1", secure), 5)
        slow.sendall(b"\x16")
        case("others are served while handshakes hang",
             round_trip(secure, files, "/during-slowloris"))
        hello_part.settimeout(5)
        case("a truncated handshake is dropped at the handshake timeout",
             closed_by_server(hello_part))
        hello_part.close()
        slow.close()
        watcher.set("/others", b"1")
        case("the established TLS session was untouched by all of the above",
             watcher.get("/others")[0] == b"1" and watcher.connected)
        watcher.stop()
        watcher.close()
        log = main_srv.text()
        case("refused handshakes are logged with a reason",
             log.count("TLS handshake failed") >= 4, log[-1500:])
        main_srv.stop()

        # Port unification: one port, both kinds.
        uni = start("unified", ["clientPort={port}", "client.portUnification=true"]
                    + formats["pkcs12"])
        uni.wait_listening(uni.port)
        case("portUnification: TLS on the client port",
             round_trip(uni.port, files, "/uni/tls"))
        case("portUnification: plaintext on the same port",
             round_trip(uni.port, files, "/uni/plain", tls=False))
        case("portUnification: four-letter words in plaintext",
             b"Mode: standalone" in subprocess.run(
                 ["bash", "-c", f"echo srvr | nc -q1 127.0.0.1 {uni.port}"],
                 capture_output=True).stdout)
        uni.stop()

        # x509 identities: the certificate subject as Java prints it, in ACLs.
        xs = start("x509", ["secureClientPort={secure}",
                            "authProvider.x509=org.apache.zookeeper.server.auth."
                            "X509AuthenticationProvider",
                            "X509AuthenticationProvider.superUser=CN=client2"] + formats["jks"])
        xs.wait_listening(xs.secure)
        out = zkcli(xs.secure, "create", "/x509-only", "cert-data", "x509:CN=client:cdrwa",
                    props=java_tls_props(files))
        case("x509: zkCli creates a node only its certificate may read",
             "Created /x509-only" in out, out[-600:])
        zk = kazoo(xs.secure, files, who="client")
        case("x509: kazoo with the same certificate reads it",
             zk.get("/x509-only")[0] == b"cert-data")
        zk.stop()
        zk.close()
        zk = kazoo(xs.secure, files, who="fancy")
        try:
            zk.get("/x509-only")
            case("x509: another certificate may not", False)
        except Exception as e:
            case("x509: another certificate may not", type(e).__name__ == "NoAuthError", repr(e))
        zk.stop()
        zk.close()
        zk = kazoo(xs.secure, files, who="client2")
        case("x509: X509AuthenticationProvider.superUser reads past the ACL",
             zk.get("/x509-only")[0] == b"cert-data")
        zk.stop()
        zk.close()
        # Java's own X500Principal.getName() against the identity the server took.
        dn_java = os.path.join(work, "Dn.java")
        with open(dn_java, "w") as f:
            f.write("import java.security.cert.*; import java.io.*;\n"
                    "public class Dn { public static void main(String[] a) throws Exception {\n"
                    " X509Certificate c = (X509Certificate) CertificateFactory.getInstance(\"X.509\")"
                    ".generateCertificate(new FileInputStream(a[0]));\n"
                    " System.out.println(c.getSubjectX500Principal().getName()); } }\n")
        java_dn = subprocess.run(["java", dn_java, files["fancy.crt"]], capture_output=True,
                                 text=True).stdout.strip()
        out = zkcli(xs.secure, "whoami", props=java_tls_props(files, "fancy"))
        ours = [l.split("x509: ", 1)[1].strip() for l in out.splitlines() if "x509: " in l]
        case("x509: the identity is the subject exactly as Java's X500Principal prints it",
             bool(java_dn) and ours == [java_dn], f"java={java_dn!r} paddock={ours!r}")
        xs.stop()

        # Certificate rotation under load (client.certReload).
        rotating = os.path.join(work, "rotating.pem")
        shutil.copy(files["server.pem"], rotating)
        rot = start("reload", ["secureClientPort={secure}", "ssl.clientAuth=none",
                               f"ssl.keyStore.location={rotating}", "client.certReload=true"])
        rot.wait_listening(rot.secure)

        def served_cert():
            s = tls_socket(rot.secure, files)
            der = s.getpeercert(binary_form=True)
            s.close()
            return der

        case("certReload: the first certificate is served", served_cert() == files["server.der"])
        import threading
        loaded = kazoo(rot.secure, files, who="nobody")
        session = loaded.client_id[0]
        errors, writes, stop_load = [], [0], threading.Event()

        def load():
            while not stop_load.is_set():
                try:
                    loaded.set("/rot", str(writes[0]).encode()) if loaded.exists("/rot") \
                        else loaded.create("/rot", b"0")
                    writes[0] += 1
                except Exception as e:  # any error under rotation is a failure
                    errors.append(repr(e))
        t = threading.Thread(target=load)
        t.start()
        time.sleep(0.5)
        tmp = rotating + ".new"
        shutil.copy(files["server2.pem"], tmp)
        os.rename(tmp, rotating)
        deadline = time.time() + 10
        rotated = False
        while time.time() < deadline and not rotated:
            rotated = served_cert() == files["server2.der"]
            time.sleep(0.2)
        time.sleep(0.5)
        stop_load.set()
        t.join()
        case("certReload: new connections get the new certificate within seconds", rotated)
        case("certReload: the loaded session saw no error and kept its session",
             not errors and writes[0] > 50 and loaded.client_id[0] == session,
             f"errors={errors[:3]} writes={writes[0]}")
        with open(rotating, "w") as f:
            f.write("not a certificate")
        time.sleep(2.5)
        case("certReload: a broken file keeps the current certificate",
             served_cert() == files["server2.der"] and "do not load" in rot.text())
        loaded.stop()
        loaded.close()
        rot.stop()

        # clientAuth=none: no certificate needed.
        none = start("noauth", ["secureClientPort={secure}", "ssl.clientAuth=none",
                                f"ssl.keyStore.location={files['server.pem']}"])
        none.wait_listening(none.secure)
        case("clientAuth=none: a client without a certificate is served",
             round_trip(none.secure, files, "/noauth", who="nobody"))
        none.stop()

        # SASL DIGEST-MD5 with users from a JAAS file, as ZooKeeper reads it.
        jaas = write_jaas(os.path.join(work, "jaas.conf"), "Server",
                          f'user_super="{SASL_PW}-super"\n  user_jaasuser="{SASL_PW}"')
        client_jaas = write_jaas(os.path.join(work, "jaas-client.conf"), "Client",
                                 f'username="jaasuser" password="{SASL_PW}"')
        bad_jaas = write_jaas(os.path.join(work, "jaas-bad.conf"), "Client",
                              'username="jaasuser" password="not-the-password"')
        sasl = start("sasl", ["clientPort={port}", "superUser=super",
                              "authProvider.1=org.apache.zookeeper.server.auth."
                              "SASLAuthenticationProvider",
                              f"java.security.auth.login.config={jaas}"])
        sasl.wait_listening(sasl.port)
        out = zkcli(sasl.port, "create", "/sasl-only", "secret-data", "sasl:jaasuser:cdrwa",
                    props=[f"-Djava.security.auth.login.config={client_jaas}"])
        case("zkCli authenticates by SASL DIGEST-MD5 and creates a node with a sasl ACL",
             "Created /sasl-only" in out, out[-800:])
        out = zkcli(sasl.port, "get", "/sasl-only",
                    props=[f"-Djava.security.auth.login.config={client_jaas}"])
        case("the SASL user reads it", "secret-data" in out, out[-800:])
        super_jaas = write_jaas(os.path.join(work, "jaas-super.conf"), "Client",
                                f'username="super" password="{SASL_PW}-super"')
        out = zkcli(sasl.port, "get", "/sasl-only",
                    props=[f"-Djava.security.auth.login.config={super_jaas}"])
        case("zookeeper.superUser: the SASL super user reads past the ACL",
             "secret-data" in out, out[-800:])
        r = subprocess.run([binary, "cli", f"-Djava.security.auth.login.config={client_jaas}",
                            "-server", f"127.0.0.1:{sasl.port}", "get", "/sasl-only"],
                           capture_output=True, text=True, timeout=60)
        case("paddock cli authenticates by SASL (JAAS Client section) and reads it",
             "secret-data" in r.stdout, (r.stdout + r.stderr)[-600:])
        r = subprocess.run([binary, "cli", f"-Djava.security.auth.login.config={bad_jaas}",
                            "-timeout", "3000", "-server", f"127.0.0.1:{sasl.port}",
                            "get", "/sasl-only"], capture_output=True, text=True, timeout=60)
        case("paddock cli with a wrong SASL password is refused (AuthFailed)",
             "secret-data" not in r.stdout and "AuthFailed" in r.stdout + r.stderr,
             (r.stdout + r.stderr)[-600:])
        zk = kazoo(sasl.port, files, tls=False)
        try:
            zk.get("/sasl-only")
            case("a client without SASL cannot read it", False)
        except Exception as e:  # NoAuthError
            case("a client without SASL cannot read it", type(e).__name__ == "NoAuthError",
                 repr(e))
        sock = raw_session(sasl.port)
        err = raw_sasl(sock, "jaasuser", "not-the-password")
        closed = closed_by_server(sock)
        sock.close()
        case("a wrong SASL password gets AUTHFAILED (-115) and a closed connection",
             err == -115 and closed, f"err={err} closed={closed}")
        zk.create("/sasl-bystander", b"1")
        out = zkcli(sasl.port, "get", "/sasl-only",
                    props=[f"-Djava.security.auth.login.config={bad_jaas}"])
        case("zkCli with a wrong SASL password is refused",
             "secret-data" not in out, out[-800:])
        case("a wrong SASL password does not disturb other sessions",
             zk.get("/sasl-bystander")[0] == b"1" and zk.connected)
        # A mechanism the server does not speak (PLAIN): as ZooKeeper, its token is not taken
        # for a DIGEST-MD5 response, so the client gains no identity and reads nothing.
        plain = KazooClient(hosts=f"127.0.0.1:{sasl.port}", timeout=5, sasl_options={
            "mechanism": "PLAIN", "username": "jaasuser", "password": SASL_PW})
        plain.start(5)
        try:
            plain.get("/sasl-only")
            got = "read it"
        except Exception as e:  # NoAuthError
            got = type(e).__name__
        plain.stop()
        plain.close()
        case("an unknown mechanism (PLAIN) gains no identity: the sasl node stays unreadable",
             got == "NoAuthError", got)
        case("an unknown mechanism does not disturb other sessions",
             zk.get("/sasl-bystander")[0] == b"1" and zk.connected)
        zk.stop()
        zk.close()
        text = sasl.text()
        case("the failed SASL exchange is logged without its password",
             "SASL authentication failed" in text and "not-the-password" not in text
             and SASL_PW not in text, text[-800:])
        sasl.stop()
        with open(f"{work}/krb.conf", "w") as f:
            f.write('Server { com.sun.security.auth.module.Krb5LoginModule required '
                    'useKeyTab=true keyTab="/etc/zk.keytab" principal="zookeeper/h@R"; };\n')
        # allowSaslFailedClients: a failed exchange leaves the connection open.
        allow = start("allow-failed", ["clientPort={port}", "allowSaslFailedClients=true",
                                       f"java.security.auth.login.config={jaas}"])
        allow.wait_listening(allow.port)
        seed = kazoo(allow.port, files, tls=False)
        seed.create("/open", b"x")
        seed.stop()
        seed.close()
        sock = raw_session(allow.port)
        err = raw_sasl(sock, "jaasuser", "not-the-password")
        case("allowSaslFailedClients: a failed exchange is answered without an error",
             err == 0, f"err={err}")
        case("allowSaslFailedClients: and the connection goes on unauthenticated",
             get_data(sock, 50, "/open") == 0)
        sock.close()
        allow.stop()

        # Enforcement: without SASL, a session may only authenticate.
        enf = start("enforce", ["clientPort={port}", "sessionRequireClientSASLAuth=true",
                                "authProvider.1=org.apache.zookeeper.server.auth."
                                "SASLAuthenticationProvider",
                                f"java.security.auth.login.config={jaas}"])
        enf.wait_listening(enf.port)
        authed = KazooClient(hosts=f"127.0.0.1:{enf.port}", timeout=5, sasl_options={
            "mechanism": "DIGEST-MD5", "username": "jaasuser", "password": SASL_PW})
        authed.start(timeout=5)
        authed.create("/enforced", b"1")
        raw = raw_session(enf.port)
        try:
            err = get_data(raw, 1, "/enforced")
        except ConnectionError as e:
            err = repr(e)
        closed = closed_by_server(raw)
        raw.close()
        case("enforcement: an unauthenticated request gets SESSIONCLOSEDREQUIRESASLAUTH (-124)",
             err == -124, f"err={err}")
        case("enforcement: and its connection is closed", closed)
        case("enforcement: an authenticated session is served meanwhile",
             authed.get("/enforced")[0] == b"1" and authed.connected)
        authed.stop()
        authed.close()
        out = zkcli(enf.port, "get", "/enforced",
                    props=[f"-Djava.security.auth.login.config={client_jaas}"])
        case("enforcement: zkCli with SASL is served", "\n1\n" in out or out.rstrip().endswith("1"),
             out[-600:])
        # paddock bench authenticates as paddock cli does (the JAAS Client section): under
        # enforcement, a bench that did not would see every request refused.
        r = subprocess.run([binary, "bench", "run",
                            f"-Djava.security.auth.login.config={client_jaas}",
                            "--server", f"127.0.0.1:{enf.port}", "--workloads", "create,getdata",
                            "--sessions", "4", "--duration", "1s", "--warmup", "0s",
                            "--format", "json", "--quiet"],
                           capture_output=True, text=True, timeout=120)
        case("enforcement: paddock bench authenticates by SASL and runs",
             r.returncode == 0 and bench_clean(r.stdout, 2), (r.stdout + r.stderr)[-800:])
        enf.stop()

        s = start("bad-kerberos", ["clientPort={port}",
                                   f"java.security.auth.login.config={work}/krb.conf"])
        rc = s.wait_exit()
        case("refused at start: a JAAS Kerberos section whose keyTab is missing",
             rc not in (None, 0) and "keyTab /etc/zk.keytab" in s.text(), s.text()[-600:])

        # The audit log of a scripted workload, line by line against ZooKeeper 3.8's own.
        here = os.path.dirname(os.path.abspath(__file__))
        repo = os.path.dirname(os.path.dirname(here))
        workload = [sys.executable, os.path.join(here, "audit_workload.py")]
        zk_dir = os.path.join(work, "zk-audit")
        zk_port = free_port()
        zk_pid = subprocess.run([os.path.join(repo, "scripts", "start-zookeeper.sh"),
                                 str(zk_port), zk_dir, "audit.enable=true"],
                                capture_output=True, check=True).stdout.decode().strip()
        try:
            subprocess.run(workload + [str(zk_port)], check=True, capture_output=True)
        finally:
            os.kill(int(zk_pid), signal.SIGTERM)
            time.sleep(1.5)
        with open(os.path.join(zk_dir, "zookeeper.log")) as f:
            zk_lines = [l.split("AuditLogger@", 1)[1].split("] - ", 1)[1].rstrip("\n")
                        for l in f if "AuditLogger@" in l]
        aud = start("audit", ["clientPort={port}", "audit.enable=true",
                              "audit.file={}/audit/paddock_audit.log".format(work)])
        aud.wait_listening(aud.port)
        subprocess.run(workload + [str(aud.port)], check=True, capture_output=True)
        aud.stop()
        with open(os.path.join(work, "audit", "paddock_audit.log")) as f:
            raw_lines = f.read().splitlines()
        ours = [l.split(" audit.Slf4jAuditLogger: ", 1)[1] for l in raw_lines]

        def norm(lines):
            # Session ids differ between servers: number them in order of appearance.
            seen = {}
            out = []
            for l in lines:
                f = l.split("\t")
                if f[0].startswith("session="):
                    f[0] = "session=S%d" % seen.setdefault(f[0], len(seen) + 1)
                out.append("\t".join(f))
            return out

        same = norm(zk_lines) == norm(ours)
        if not same:
            with open(os.path.join(work, "audit-diff.txt"), "w") as f:
                f.write("\n".join(["ZooKeeper:"] + norm(zk_lines) + ["Paddock:"] + norm(ours)))
        case(f"audit log: {len(ours)} lines, each as ZooKeeper 3.8 writes it for the same workload",
             same and len(ours) > 20, f"see {work}/audit-diff.txt")
        case("audit log: failures at ERROR, the rest at INFO",
             all((" ERROR " in l) == ("result=failure" in l) for l in raw_lines))

        # Refusals at start: named key, non-zero exit, no secret in the output.
        bad = {
            "wrong keystore password": (
                [f"ssl.keyStore.location={files['server.jks']}",
                 "ssl.keyStore.password=not-the-password",
                 f"ssl.trustStore.location={files['trust.jks']}",
                 f"ssl.trustStore.password={STORE_PW}"], "ssl.keyStore.location"),
            "missing truststore": (
                [f"ssl.keyStore.location={files['server.pem']}",
                 f"ssl.trustStore.location={work}/nowhere.jks",
                 f"ssl.trustStore.password={STORE_PW}"], "ssl.trustStore.location"),
            "no truststore with clientAuth=need": (
                [f"ssl.keyStore.location={files['server.pem']}"], "ssl.trustStore.location"),
            "TLSv1.1 enabled": (
                [f"ssl.keyStore.location={files['server.pem']}", "ssl.clientAuth=none",
                 "ssl.enabledProtocols=TLSv1.2,TLSv1.1"], "ssl.enabledProtocols"),
            "a CBC suite": (
                [f"ssl.keyStore.location={files['server.pem']}", "ssl.clientAuth=none",
                 "ssl.ciphersuites=TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"], "ssl.ciphersuites"),
            "revocation checks": (
                [f"ssl.keyStore.location={files['server.pem']}", "ssl.clientAuth=none",
                 "ssl.crl=true"], "ssl.crl"),
            "an audit log that cannot be opened": (
                ["audit.enable=true", "audit.file=/proc/nowhere/audit.log"], "audit.file"),
            "another audit logger": (
                ["audit.enable=true", "audit.impl.class=com.example.Audit"], "audit.impl.class"),
        }
        for what, (lines, key_name) in bad.items():
            s = start("bad-" + what.replace(" ", "-").replace("=", ""),
                      ["clientPort={port}"]
                      + (["secureClientPort={secure}"] if any(l.startswith("ssl.") for l in lines)
                         else []) + lines)
            rc = s.wait_exit()
            text = s.text()
            case(f"refused at start: {what} (names {key_name})",
                 rc not in (None, 0) and key_name in text, f"rc={rc} {text[-600:]}")
            s.stop()

        leaked = [s.dir for s in servers
                  if STORE_PW in s.text() or "not-the-password" in s.text()
                  or PW_FILE_PW in s.text() or SASL_PW in s.text()]
        case("no store or SASL password in any server log", not leaked, ", ".join(leaked))
    finally:
        for s in servers:
            s.stop()
        if args.keep or failures:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"security: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
