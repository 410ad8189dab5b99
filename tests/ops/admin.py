#!/usr/bin/env python3
"""The AdminServer, end to end, against Apache ZooKeeper 3.8's own (Debian's package, Jetty).

- Every command ZooKeeper 3.8 lists is served by Paddock under the same name and short names,
  and answers with the same field names and JSON types, after the same kazoo workload on both
  (differences on purpose are listed in SHAPE_EXCEPTIONS and docs/operations.md).
- Commands that change state or show sessions and watches need an identity with ADMIN on `/`
  (not `world:anyone`): refused without, served with the super user's digest, a digest user, an
  address, or a client certificate that `/`'s ACL grants ADMIN.
- X-Forwarded-For is ignored unless the peer is in admin.trustedProxies (CVE-2024-51504).
- It binds 127.0.0.1 unless told otherwise; admin.enableServer=false turns it off; a port that
  is taken leaves the server serving without it.
- HTTPS with the ssl.quorum.* keystore (admin.forceHttps; admin.portUnification: both).
- `paddock admin`: JSON, --table, the command list, exit 1 on an error.

  tests/ops/admin.py [--bin target/release/paddock] [--keep]
"""

import argparse
import base64
import hashlib
import http.client
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from cryptography import x509
from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "tests", "security"))
from check import Server, case, cert, failures, free_port, key, pem_cert, pem_key  # noqa: E402

SUPER_PW = "super-admin-pw-2b7"
SUPER_DIGEST = "super:" + base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PW}".encode()).digest()).decode()
SUPER_AUTH = {"Authorization": f"digest super:{SUPER_PW}"}

# Field differences on purpose: command -> ZooKeeper's fields Paddock does not have, and why.
SHAPE_EXCEPTIONS = {
    # JVM facts; Paddock lists the ones that mean something outside a JVM.
    "environment": "java.*, os.memory.*: a JVM's",
    "system_properties": "a JVM's system properties; Paddock lists its settings",
    # ZooKeeper's monitor has its ServerMetrics registry (a few hundred request-pipeline
    # figures of its own processors); Paddock reports those it measures (MONITOR_REQUIRED).
    "monitor": "ZooKeeper's processor-pipeline metrics",
}

# The monitor fields every dashboard reads: each must be in Paddock's, with ZooKeeper's type.
MONITOR_REQUIRED = [
    "version", "server_state", "avg_latency", "max_latency", "min_latency", "packets_received",
    "packets_sent", "num_alive_connections", "outstanding_requests", "uptime", "znode_count",
    "watch_count", "ephemerals_count", "approximate_data_size", "global_sessions",
    "local_sessions", "open_file_descriptor_count", "max_file_descriptor_count",
    "connection_drop_probability", "auth_failed_count", "outstanding_tls_handshake",
    "snap_count",
] + [f"{s}_{m}" for m in ("readlatency", "updatelatency") for s in
     ("avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999")] + [
    f"{s}_{m}" for m in ("fsynctime", "snapshottime", "election_time", "sync_processor_batch_size")
    for s in ("avg", "min", "max", "cnt", "sum")] + [
    # ZooKeeper's ServerMetrics that Paddock has a counterpart for.
    "bytes_received_count", "response_bytes", "connection_request_count",
    "connection_revalidate_count", "cnxn_closed_without_zk_server_running",
    "stale_sessions_expired", "proposal_count", "commit_count",
    "learner_proposal_received_count", "learner_commit_received_count", "looking_count",
    "diff_count", "watch_bytes", "last_client_response_size", "min_client_response_size",
    "max_client_response_size", "connection_rejected", "sessionless_connections_expired",
    "unsuccessful_handshake", "large_requests_rejected", "insecure_admin_count",
] + [f"{s}_{m}" for m in (
    "quorum_ack_latency", "propagation_latency", "commit_propagation_latency",
    "close_session_prep_time", "sync_processor_queue_time_ms",
    "sync_processor_queue_and_flush_time_ms", "sync_processor_queue_flush_time_ms")
    for s in ("avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999")] + [
    f"{s}_{m}" for m in (
        "prep_process_time", "follower_sync_time", "observer_sync_time", "unavailable_time",
        "leader_unavailable_time", "node_created_watch_count", "node_deleted_watch_count",
        "node_changed_watch_count", "node_children_watch_count", "sync_processor_queue_size",
        "startup_snap_load_time", "startup_txns_load_time", "startup_txns_loaded", "dbinittime")
    for s in ("avg", "min", "max", "cnt", "sum")]


def kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    return "object"


def shape_diff(zk, pd, where=""):
    """Differences of field names and types, ZooKeeper's answer against Paddock's."""
    out = []
    if kind(zk) != kind(pd):
        # A float that happens to be whole is still a float in both encoders; ints never
        # turn into floats, so a mismatch here is real.
        return [f"{where or '.'}: {kind(zk)} in ZooKeeper, {kind(pd)} in Paddock"]
    if isinstance(zk, dict) and zk and all(k.isdigit() for k in zk):
        # Keyed by session id or time: the values' shape is what counts.
        if pd:
            out += shape_diff(next(iter(zk.values())), next(iter(pd.values())), f"{where}.<id>")
        else:
            out.append(f"{where}: empty in Paddock")
    elif isinstance(zk, dict):
        for k in zk:
            if k not in pd:
                out.append(f"{where}.{k}: missing in Paddock")
            else:
                out += shape_diff(zk[k], pd[k], f"{where}.{k}")
        for k in pd:
            if k not in zk:
                out.append(f"{where}.{k}: Paddock only")
    elif isinstance(zk, list) and zk and pd:
        out += shape_diff(zk[0], pd[0], f"{where}[0]")
    return out


def get(port, path, headers=None, scheme="http", context=None, host="127.0.0.1"):
    req = urllib.request.Request(f"{scheme}://{host}:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as r:
            body = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read().decode(), e.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def workload(port):
    """The same state on both servers: a session with an ephemeral node and three watches."""
    k = KazooClient(f"127.0.0.1:{port}", timeout=10)
    k.start(15)
    k.create("/eph", b"x", ephemeral=True)
    k.create("/p", b"y")
    k.get("/p", watch=lambda e: None)
    k.exists("/nope", watch=lambda e: None)
    k.get_children("/", watch=lambda e: None)
    return k


def start_zookeeper(work):
    port, admin = free_port(), free_port()
    pid = subprocess.run(
        [os.path.join(repo, "scripts", "start-zookeeper.sh"), str(port), os.path.join(work, "zk"),
         "admin.enableServer=true", f"admin.serverPort={admin}"],
        check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return int(pid), port, admin


def wait_http(port, host="127.0.0.1", timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def paddock_admin(binary, *args):
    return subprocess.run([binary, "admin", *args], capture_output=True, text=True, timeout=30)


def compare_with_zookeeper(binary, work):
    zk_pid, zk_port, zk_admin = start_zookeeper(work)
    admin = free_port()
    pd = Server(binary, work, "paddock", [
        "clientPort={port}", "admin.enableServer=true", f"admin.serverPort={admin}",
        f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}", "4lw.commands.whitelist=*"])
    clients = []
    try:
        pd.wait_listening(pd.port)
        wait_http(admin)
        clients = [workload(zk_port), workload(pd.port)]
        # ZooKeeper's list of commands, from its own index page.
        _, index = get(zk_admin, "/commands")
        zk_names = sorted(set(n.split("/")[-1] for n in index.split('"') if "/commands/" in n))
        _, pd_index = get(admin, "/commands")
        pd_names = sorted(set(n.split("/")[-1] for n in pd_index.split('"') if "/commands/" in n))
        case(f"Paddock lists every command ZooKeeper 3.8 lists ({len(zk_names)})",
             set(zk_names) <= set(pd_names), f"missing: {set(zk_names) - set(pd_names)}")
        _, mon = get(admin, "/commands/monitor")
        _, zk_mon = get(zk_admin, "/commands/monitor")
        missing = [m for m in MONITOR_REQUIRED if m not in mon]
        typed = [m for m in MONITOR_REQUIRED if m in mon and m in zk_mon
                 and kind(mon[m]) != kind(zk_mon[m])]
        case("monitor has the fields dashboards read, typed as ZooKeeper's",
             not missing and not typed, f"missing {missing}, typed differently {typed}")
        not_zk = [m for m in MONITOR_REQUIRED if m not in zk_mon]
        case(f"those {len(MONITOR_REQUIRED)} fields are ZooKeeper's own names", not not_zk,
             f"not in ZooKeeper's monitor: {not_zk}")
        case("monitor counted the workload's reads and writes",
             mon.get("cnt_readlatency", 0) >= 3 and mon.get("cnt_updatelatency", 0) >= 2
             and mon.get("cnt_fsynctime", 0) >= 1, json.dumps({k: mon.get(k) for k in (
                 "cnt_readlatency", "cnt_updatelatency", "cnt_fsynctime")}))
        for name in zk_names:
            _, zk = get(zk_admin, f"/commands/{name}")
            status, ours = get(admin, f"/commands/{name}", SUPER_AUTH)
            if not isinstance(ours, dict):
                case(f"{name}: JSON", False, str(ours)[:200])
                continue
            diffs = shape_diff(zk, ours)
            if name in SHAPE_EXCEPTIONS:
                diffs = [d for d in diffs if "missing in Paddock" not in d and "Paddock only" not in d]
            # Paddock's own extras are fine; a ZooKeeper field missing or typed differently
            # is not.
            diffs = [d for d in diffs if "Paddock only" not in d]
            # ZooKeeper's `leader` in standalone answers an error; so does Paddock's.
            case(f"{name}: ZooKeeper's fields and types (HTTP {status})",
                 status == 200 and not diffs, "; ".join(diffs[:8]))
        for short, primary in [("mntr", "monitor"), ("srvr", "server_stats"), ("conf", "configuration"),
                               ("config", "configuration"), ("cons", "connections"),
                               ("wchs", "watch_summary"), ("isro", "is_read_only"),
                               ("lsnp", "last_snapshot"), ("icfg", "initial_configuration")]:
            _, zk_s = get(zk_admin, f"/commands/{short}")
            _, pd_s = get(admin, f"/commands/{short}", SUPER_AUTH)
            case(f"short name {short} runs {primary} (as ZooKeeper's)",
                 isinstance(pd_s, dict) and pd_s.get("command") == primary
                 == zk_s.get("command"), f"{pd_s}")
        _, dump = get(admin, "/commands/dump", SUPER_AUTH)
        sid = str(clients[1].client_id[0])
        case("dump shows the session's ephemeral",
             dump.get("session_id_to_ephemeral_paths", {}).get(sid) == ["/eph"], f"{dump}")
        _, w = get(admin, "/commands/watches_by_path", SUPER_AUTH)
        case("watches_by_path shows the watches",
             sorted(w.get("path_to_session_ids", {})) == ["/", "/nope", "/p"], f"{w}")
        _, unk = get(admin, "/commands/nonesuch")
        _, zk_unk = get(zk_admin, "/commands/nonesuch")
        case("an unknown command is answered as ZooKeeper answers it", unk == zk_unk, f"{unk}")
        _, st = get(admin, "/commands/set_trace_mask?traceMask=0", SUPER_AUTH)
        _, gt = get(admin, "/commands/get_trace_mask")
        case("set_trace_mask then get_trace_mask", st.get("tracemask") == 0
             and gt.get("tracemask") == 0, f"{st} {gt}")
        _, bad = get(admin, "/commands/set_trace_mask?traceMask=x", SUPER_AUTH)
        _, zk_bad = get(zk_admin, "/commands/set_trace_mask?traceMask=x")
        case("a bad argument gets ZooKeeper's error", bad.get("error") == zk_bad.get("error"),
             f"{bad} vs {zk_bad}")
        text = socket.create_connection(("127.0.0.1", pd.port))
        text.sendall(b"mntr")
        mntr = b""
        while chunk := text.recv(65536):
            mntr += chunk
        text.close()
        case("mntr (the four-letter word) spells summaries out as ZooKeeper's",
             b"zk_p99_readlatency\t" in mntr and b"zk_cnt_fsynctime\t" in mntr, mntr[-300:].decode())
    finally:
        for c in clients:
            c.stop()
        pd.stop()
        os.kill(zk_pid, 15)


def root_acl(port, acl):
    k = KazooClient(f"127.0.0.1:{port}", timeout=10,
                    auth_data=[("digest", f"super:{SUPER_PW}")])
    k.start(15)
    k.set_acls("/", acl)
    k.stop()


def authorization(binary, work):
    admin = free_port()
    pd = Server(binary, work, "auth", [
        "clientPort={port}", f"admin.serverPort={admin}",
        f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"])
    try:
        pd.wait_listening(pd.port)
        wait_http(admin)
        log = pd.text()
        case("the AdminServer binds 127.0.0.1 by default",
             f"AdminServer listening addr=127.0.0.1:{admin}" in log, log[-500:])
        sensitive = ["dump", "cons", "stat", "wchc", "wchp", "crst", "srst", "stmk?traceMask=1"]
        open_root = [get(admin, f"/commands/{c}")[0] for c in sensitive]
        case("with world:anyone on /, sensitive commands are refused (403)",
             set(open_root) == {403}, f"{open_root}")
        case("non-sensitive commands are served without an identity",
             all(get(admin, f"/commands/{c}")[0] == 200 for c in ("mntr", "srvr", "conf", "ruok")))
        served = [get(admin, f"/commands/{c}", SUPER_AUTH)[0] for c in sensitive]
        case("the super user's digest is served", set(served) == {200}, f"{served}")
        wrong = get(admin, "/commands/dump", {"Authorization": "digest super:wrong"})[0]
        case("a wrong password is refused", wrong == 403)
        root_acl(pd.port, [make_digest_acl("ops", "ops-pw", all=True),
                           make_acl("world", "anyone", read=True)])
        ok = get(admin, "/commands/dump", {"Authorization": "digest ops:ops-pw"})[0]
        no = get(admin, "/commands/dump", {"Authorization": "digest ops:nope"})[0]
        case("a digest user with ADMIN on / is served; with a wrong password refused",
             (ok, no) == (200, 403), f"{ok} {no}")
        root_acl(pd.port, [make_acl("ip", "127.0.0.1", all=True)])
        case("an address with ADMIN on / is served without a header",
             get(admin, "/commands/dump")[0] == 200)
        root_acl(pd.port, [make_acl("ip", "10.9.9.9", all=True)])
        spoof = get(admin, "/commands/dump", {"X-Forwarded-For": "10.9.9.9"})[0]
        case("X-Forwarded-For is ignored (CVE-2024-51504)", spoof == 403, f"{spoof}")
        r = paddock_admin(binary, "dump", "-server", f"127.0.0.1:{admin}")
        case("paddock admin exits 1 on a refused command and says why",
             r.returncode == 1 and "ADMIN permission" in r.stderr, r.stderr + r.stdout)
        r = paddock_admin(binary, "mntr", "-server", f"127.0.0.1:{admin}", "--table")
        case("paddock admin --table", r.returncode == 0 and any(
            line.split()[:1] == ["znode_count"] for line in r.stdout.splitlines()), r.stdout[:300])
        r = paddock_admin(binary, "cons", "--server", f"127.0.0.1:{admin}",
                          "--digest", f"super:{SUPER_PW}")
        case("paddock admin --digest", r.returncode == 0
             and json.loads(r.stdout).get("command") == "connections", r.stderr + r.stdout)
        r = paddock_admin(binary, "list", "-server", f"127.0.0.1:{admin}")
        case("paddock admin list", r.returncode == 0 and "watches_by_path" in r.stdout.split())
    finally:
        pd.stop()
    # A trusted proxy's X-Forwarded-For names the client.
    admin = free_port()
    pd = Server(binary, work, "proxy", [
        "clientPort={port}", f"admin.serverPort={admin}", "admin.trustedProxies=127.0.0.1",
        f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"])
    try:
        pd.wait_listening(pd.port)
        wait_http(admin)
        root_acl(pd.port, [make_acl("ip", "10.9.9.9", all=True)])
        fwd = get(admin, "/commands/dump", {"X-Forwarded-For": "10.9.9.9, 127.0.0.1"})[0]
        other = get(admin, "/commands/dump", {"X-Forwarded-For": "10.1.1.1"})[0]
        case("a trusted proxy's X-Forwarded-For is believed", (fwd, other) == (200, 403),
             f"{fwd} {other}")
    finally:
        pd.stop()


def switches(binary, work):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken = busy.getsockname()[1]
    pd = Server(binary, work, "taken", ["clientPort={port}", f"admin.serverPort={taken}"])
    try:
        pd.wait_listening(pd.port)
        case("a taken admin port leaves the server serving, with a warning",
             "the AdminServer is not started" in pd.text(), pd.text()[-400:])
    finally:
        pd.stop()
        busy.close()
    port = free_port()
    pd = Server(binary, work, "off", ["clientPort={port}", "admin.enableServer=false",
                                      f"admin.serverPort={port}"])
    try:
        pd.wait_listening(pd.port)
        case("admin.enableServer=false: nothing listens", not wait_http(port, timeout=0.5))
    finally:
        pd.stop()
    port = free_port()
    pd = Server(binary, work, "any", ["clientPort={port}", "admin.serverAddress=0.0.0.0",
                                      f"admin.serverPort={port}", "admin.commandURL=/zk"])
    try:
        pd.wait_listening(pd.port)
        wait_http(port)
        status, body = get(port, "/zk/ruok", host="127.0.0.2")
        case("admin.serverAddress=0.0.0.0 and admin.commandURL", status == 200
             and body.get("command") == "ruok", f"{status} {body}")
    finally:
        pd.stop()


def https(binary, work):
    d = os.path.join(work, "pki")
    os.makedirs(d, exist_ok=True)
    ca_key = key()
    ca = cert("Admin CA", ca_key.public_key(), None, ca_key, ca=True)
    sk = key()
    sc = cert("admin server", sk.public_key(), ca, ca_key,
              san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    ck = key()
    cc = cert("operator", ck.public_key(), ca, ca_key)
    files = {}
    for name, data in [("ca.pem", pem_cert(ca)), ("server.pem", pem_key(sk) + pem_cert(sc)),
                       ("client.pem", pem_cert(cc)), ("client.key", pem_key(ck))]:
        files[name] = os.path.join(d, name)
        with open(files[name], "wb") as f:
            f.write(data)
    stores = [f"ssl.quorum.keyStore.location={files['server.pem']}",
              f"ssl.quorum.trustStore.location={files['ca.pem']}"]
    ctx = ssl.create_default_context(cafile=files["ca.pem"])
    for mode in ("admin.forceHttps=true", "admin.portUnification=true"):
        admin = free_port()
        pd = Server(binary, work, mode.split(".")[1].split("=")[0], [
            "clientPort={port}", f"admin.serverPort={admin}", mode,
            "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
            f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"] + stores)
        try:
            pd.wait_listening(pd.port)
            wait_http(admin)
            status, body = get(admin, "/commands/ruok", scheme="https", context=ctx)
            case(f"{mode}: HTTPS with the ssl.quorum keystore", status == 200, f"{status} {body}")
            try:
                plain = get(admin, "/commands/ruok")[0]
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                plain = None
            want = 200 if "portUnification" in mode else None
            case(f"{mode}: plain HTTP {'served too' if want else 'refused'}", plain == want,
                 f"{plain}")
            r = paddock_admin(binary, "srvr", "-server", f"127.0.0.1:{admin}", "--https",
                              "--cacert", files["ca.pem"])
            case(f"{mode}: paddock admin --https", r.returncode == 0, r.stderr)
        finally:
            pd.stop()
    # A client certificate is an x509 identity that /'s ACL can grant ADMIN.
    admin = free_port()
    pd = Server(binary, work, "x509", [
        "clientPort={port}", f"admin.serverPort={admin}", "admin.forceHttps=true",
        "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
        f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}"] + stores)
    try:
        pd.wait_listening(pd.port)
        wait_http(admin)
        root_acl(pd.port, [make_acl("x509", "CN=operator", all=True)])
        with_cert = ssl.create_default_context(cafile=files["ca.pem"])
        with_cert.load_cert_chain(files["client.pem"], files["client.key"])
        ok = get(admin, "/commands/dump", scheme="https", context=with_cert)[0]
        no = get(admin, "/commands/dump", scheme="https", context=ctx)[0]
        case("a client certificate with ADMIN on / is served; without one refused",
             (ok, no) == (200, 403), f"{ok} {no}")
        # The console edits as the certificate's x509 identity: a znode only CN=operator may
        # write is written with the certificate, and refused without it.
        k = KazooClient(f"127.0.0.1:{pd.port}", timeout=10,
                        auth_data=[("digest", f"super:{SUPER_PW}")])
        k.start(15)
        k.create("/op-only", b"0", acl=[make_acl("x509", "CN=operator", all=True)])

        def console_set(context, value):
            body = json.dumps({"op": "set", "path": "/op-only", "data": value}).encode()
            req = urllib.request.Request(f"https://127.0.0.1:{admin}/api/write", data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10, context=context) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        with_status = console_set(with_cert, "by-cert")
        without = console_set(ctx, "anonymous")
        data = k.get("/op-only")[0]
        case("the console writes as the viewer's certificate (x509 ACL), refuses without one",
             (with_status, without, data) == (200, 401, b"by-cert"),
             f"{with_status} {without} {data}")
        k.stop()
        # The scheme that hands the console's session the certificate takes only the core's
        # one-time grants: a guessed token is refused.
        guess = KazooClient(f"127.0.0.1:{pd.port}", timeout=10)
        guess.start(15)
        try:
            guess.add_auth("paddock-console", "not-a-grant")
            refused = False
        except Exception:  # noqa: BLE001 (AuthFailedError, or the session closing)
            refused = True
        case("a console grant cannot be guessed (AUTHFAILED)", refused)
        guess.stop()
    finally:
        pd.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(repo, "target", "release", "paddock"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        print(f"FAIL {a.bin} is missing (cargo build --release)")
        return 1
    binary = os.path.abspath(a.bin)
    work = tempfile.mkdtemp(prefix="paddock-admin-")
    try:
        compare_with_zookeeper(binary, work)
        authorization(binary, work)
        switches(binary, work)
        https(binary, work)
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"admin: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
