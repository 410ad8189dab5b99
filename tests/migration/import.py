#!/usr/bin/env python3
"""`paddock import-zk` and `paddock export-zk`: data directories Apache ZooKeeper 3.8 wrote
(Debian's package) come across whole, and go back.

ZooKeeper runs a workload (every node type, ACL schemes, multi, deletes that free sequence
numbers, 1 MB of data, container and TTL nodes, sessions open at the end) with a small snapCount, so the
import spans several snapshots and logs, in three shapes:

- killed: SIGKILL while a client writes; then copies with the last log cut inside its last
  record (a torn tail, dropped) and with a corrupt record in the middle of a log (refused,
  naming the file and offset);
- gz: snapshots compressed with gzip, the logs in a dataLogDir apart, stopped cleanly;
- snappy, as older versions write: snapshots compressed with snappy, digests off and
  closeSession without its paths (digest.enabled=false, closeSessionTxn.enabled=false).

In each, Paddock started on the import and ZooKeeper restarted on its own directory serve the
same tree (every path, its data, every Stat field and its ACL, compared through kazoo) with the
same digest. Then Paddock's directory is exported: ZooKeeper 3.8 started on the export serves
the tree Paddock served, and its own `hash` agrees with the digest of the tree it read, so the
round trip ZooKeeper -> Paddock -> ZooKeeper keeps the digest.

  tests/migration/import.py [--bin target/release/paddock]
"""

import os
import shutil
import signal
import sys
import tempfile
import threading
import time

from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "tests", "security"))
from check import Server, case, failures, free_port  # noqa: E402
from common import (AUTH, dump_digest, four, paddock_binary, read_tree, run,  # noqa: E402
                    same_tree, start_zk, stop_zk, tree_digest)
# The workload's container and TTL nodes: their stored owner (a marker) is digested, not the
# 0 clients see. A TTL node's is 0xFF << 56 | its TTL.
TTL = 3_600_000
OWNERS = {"/app/box": -(1 << 63), "/app/ttl": (0xFF << 56 | TTL) - (1 << 64)}


def workload(binary, port):
    """Every kind of node and write; returns the client holding open sessions' ephemerals."""
    k = KazooClient(f"127.0.0.1:{port}", timeout=30, auth_data=AUTH)
    k.start(15)
    k.create("/app", b"app")
    for i in range(30):
        k.create("/app/seq-", f"{i}".encode(), sequence=True)
    for c in sorted(k.get_children("/app"))[::3]:
        k.delete(f"/app/{c}")  # deletes that free sequence numbers
    k.create("/app/big", b"b" * 1_000_000)
    k.create("/app/null")
    k.create("/app/secret", b"s", acl=[make_digest_acl("ops", "pw", all=True)])
    k.create("/app/ip", b"i", acl=[make_acl("ip", "127.0.0.1", all=True)])
    k.create("/app/mixed", b"m", acl=[make_acl("world", "anyone", read=True),
                                       make_digest_acl("ops", "pw", all=True)])
    # kazoo has no container mode: zkCli's `create -c`, through paddock cli.
    r = run(binary, "cli", "-server", f"127.0.0.1:{port}", "create", "-c", "/app/box", "")
    if r.returncode != 0:
        raise RuntimeError(f"create -c: {r.stdout} {r.stderr}")
    k.create("/app/box/item", b"x")
    # TTL nodes need ZooKeeper's extendedTypesEnabled (start_zk sets it); kazoo has no TTL mode.
    r = run(binary, "cli", "-server", f"127.0.0.1:{port}", "create", "-t", str(TTL), "/app/ttl",
            "t")
    if r.returncode != 0:
        raise RuntimeError(f"create -t: {r.stdout} {r.stderr}")
    k.create("/app/eph", b"e", ephemeral=True)
    k.create("/app/eph-seq-", b"", ephemeral=True, sequence=True)
    for i in range(20):
        k.set("/app/big", f"v{i}".encode() * 1000)
    k.set_acls("/app/ip", [make_acl("world", "anyone", all=True)])
    tx = k.transaction()
    tx.create("/app/m1", b"1")
    tx.set_data("/app/m1", b"2")
    tx.check("/app", 0)
    tx.commit()
    tx = k.transaction()
    tx.create("/app/m2", b"x")
    tx.create("/app/m1", b"dup")  # fails: the multi applies nothing
    tx.commit()
    gone = KazooClient(f"127.0.0.1:{port}", timeout=30)
    gone.start(15)
    gone.create("/app/gone", b"", ephemeral=True)
    gone.stop()
    return k


def dump(port):
    """Every node: path -> (data, Stat fields, ACL); and ZooKeeper's digest of the tree."""
    k = KazooClient(f"127.0.0.1:{port}", timeout=30, auth_data=AUTH)
    k.start(15)
    try:
        tree = read_tree(k)
    finally:
        k.stop()
    return tree, dump_digest(tree, OWNERS)


def kill_while_writing(k, pid):
    """SIGKILL while a client writes: no clean shutdown."""
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            try:
                k.create("/app/late-", str(i).encode(), sequence=True)
            except Exception:  # noqa: BLE001
                return
            i += 1
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    stop.set()
    t.join(10)
    time.sleep(0.5)


class Ctx:
    def __init__(self, binary, work):
        self.binary, self.work = binary, work
        self.pids, self.servers = [], []

    def zk(self, port, d, extra=()):
        pid = start_zk(port, d, ["snapCount=40", *extra])
        self.pids.append(pid)
        return pid

    def paddock(self, name, data_dir):
        pd = Server(self.binary, self.work, name, [
            "clientPort={port}", f"dataDir={data_dir}", "tickTime=2000",
            "4lw.commands.whitelist=*"])
        self.servers.append(pd)
        pd.wait_listening(pd.port)
        return pd

    def close(self):
        for pd in self.servers:
            pd.stop()
        for p in self.pids:
            try:
                os.kill(p, signal.SIGTERM)
            except OSError:
                pass


def variant(ctx, name, extra, kill, log_apart=False):
    """Runs ZooKeeper with `extra` zoo.cfg lines under the workload, stops it (SIGKILL mid-write
    or cleanly), imports its directory, and compares Paddock on the import with ZooKeeper
    restarted on its own. Returns (zk dataDir, Paddock's server, its dataDir)."""
    work, binary = ctx.work, ctx.binary
    zk_dir = os.path.join(work, f"zk-{name}")
    log_dir = os.path.join(work, f"zk-{name}-log") if log_apart else None
    extra = list(extra) + ([f"dataLogDir={log_dir}"] if log_dir else [])
    zk_port = free_port()
    pid = ctx.zk(zk_port, zk_dir, extra)
    k = workload(binary, zk_port)
    if kill:
        kill_while_writing(k, pid)
    else:
        k.stop()
        stop_zk(pid)
    v2 = os.path.join(log_dir or zk_dir, "version-2")
    snaps = [n for n in os.listdir(os.path.join(zk_dir, "version-2")) if n.startswith("snapshot.")]
    logs = [n for n in os.listdir(v2) if n.startswith("log.")]
    suffix = {"gz": ".gz", "snappy": ".snappy"}.get(name, "")
    case(f"{name}: ZooKeeper left several snapshots{' (' + suffix + ')' if suffix else ''} "
         "and logs", len(snaps) >= 2 and len(logs) >= 2
         and all(n.endswith(suffix) for n in snaps), f"{snaps} {logs}")
    if kill:
        # Copies for the damaged variants, before anything starts on the directory again.
        shutil.copytree(zk_dir, os.path.join(work, "torn"))
        shutil.copytree(zk_dir, os.path.join(work, "corrupt"))

    pd_dir = os.path.join(work, f"paddock-{name}")
    r = run(binary, "import-zk", zk_dir, *([log_dir] if log_dir else []), "--to", pd_dir)
    digests_off = "digest.enabled=false" in extra
    verdict = "digests were off" if digests_off else "digests match"
    case(f"{name}: paddock import-zk reads ZooKeeper's directory ({verdict})",
         r.returncode == 0 and verdict in r.stdout, r.stdout + r.stderr[-2000:])
    print("\n".join("     " + ln for ln in r.stdout.splitlines()))

    # ZooKeeper 3.8 dies at start (EOFException) on a log whose header never reached the disk,
    # which a kill just after it opened a new log leaves; the import reads such a file as the
    # end of the logs. ZooKeeper restarts without it.
    drop_headerless_logs(v2)
    ctx.zk(zk_port, zk_dir, extra)
    pd = ctx.paddock(f"paddock-{name}", pd_dir)
    time.sleep(1)
    zk_tree = dump(zk_port)
    same_tree(f"{name}: Paddock on the import serves the tree ZooKeeper serves",
              zk_tree, dump(pd.port), 30)
    return zk_dir, zk_tree, pd, pd_dir


def drop_headerless_logs(v2):
    for n in os.listdir(v2):
        p = os.path.join(v2, n)
        if n.startswith("log.") and os.path.getsize(p) < 16:
            print(f"     {n} holds {os.path.getsize(p)} bytes, no header: ZooKeeper cannot start "
                  "on it, so it is removed before ZooKeeper restarts")
            os.remove(p)


def damaged(ctx):
    """The copies of the killed directory: a torn tail, a corrupt record (in the newest log
    holding records: a headerless one after it, as above, goes)."""
    work, binary = ctx.work, ctx.binary
    torn = os.path.join(work, "torn")
    tv2 = os.path.join(torn, "version-2")
    drop_headerless_logs(tv2)
    drop_headerless_logs(os.path.join(work, "corrupt", "version-2"))
    newest = max((n for n in os.listdir(tv2) if n.startswith("log.")),
                 key=lambda n: int(n.split(".")[1], 16))
    path = os.path.join(tv2, newest)
    data = open(path, "rb").read()
    end = len(data.rstrip(b"\0"))
    with open(path, "r+b") as f:
        f.truncate(end - 3)
    r = run(binary, "import-zk", torn, "--to", os.path.join(work, "torn-import"))
    case("a log cut inside its last record: the torn record is dropped, the rest imported",
         r.returncode == 0 and "torn tail" in r.stdout, r.stdout + r.stderr[-500:])

    # A corrupt record in the middle of the log the import replays (its first of several):
    # refused, naming the file and offset.
    corrupt = os.path.join(work, "corrupt")
    cv2 = os.path.join(corrupt, "version-2")
    first = max((n for n in os.listdir(cv2) if n.startswith("log.")),
                key=lambda n: int(n.split(".")[1], 16))
    path = os.path.join(cv2, first)
    data = bytearray(open(path, "rb").read())
    data[16 + 12 + 40] ^= 0xFF  # inside the first record's entry
    open(path, "wb").write(bytes(data))
    r = run(binary, "import-zk", corrupt, "--to", os.path.join(work, "corrupt-import"))
    case("a corrupt record in the middle of a log is refused, naming the file and offset",
         r.returncode != 0 and first in r.stderr and "offset 16" in r.stderr,
         r.stderr[-500:])


def export(ctx, original, pd, pd_dir):
    """Paddock's directory back into ZooKeeper's format, loaded by ZooKeeper 3.8."""
    work, binary = ctx.work, ctx.binary
    out = os.path.join(work, "exported")
    r = run(binary, "export-zk", pd_dir, "--to", out)
    case("export-zk refuses the directory of a running server",
         r.returncode != 0 and "in use" in r.stderr, r.stdout + r.stderr[-500:])
    served = dump(pd.port)
    pd.stop()
    r = run(binary, "export-zk", pd_dir, "--to", out)
    case("paddock export-zk writes ZooKeeper's snapshot of a stopped server's directory",
         r.returncode == 0 and "written" in r.stdout, r.stdout + r.stderr[-2000:])
    print("\n".join("     " + ln for ln in r.stdout.splitlines()))
    again = run(binary, "export-zk", pd_dir, "--to", out)
    case("export-zk refuses a ZooKeeper directory that holds files",
         again.returncode != 0 and "not empty" in again.stderr, again.stderr[-300:])
    port = free_port()
    ctx.zk(port, out)
    back = dump(port)
    same_tree("ZooKeeper 3.8 started on the export serves the tree Paddock served", served, back,
              30)
    reported = next((int(ln.split()[-1]) for ln in r.stdout.splitlines()
                     if ln.split()[:1] == ["digest"]), None)
    case("export-zk reports the digest of the tree Paddock served",
         reported == served[1], f"reported {reported}, served {served[1]}")
    case("the round trip ZooKeeper -> Paddock -> ZooKeeper keeps the digest",
         back[1] == original[1], f"ZooKeeper at first {original[1]}, after {back[1]}")
    # ZooKeeper's own digest of what it loaded: in its `hash` at the next zxid that is a
    # multiple of 128, equal to the digest of the tree it then serves.
    k = KazooClient(f"127.0.0.1:{port}", timeout=30, auth_data=AUTH)
    k.start(15)
    k.ensure_path("/roundtrip")
    while k.set("/roundtrip", b"r").mzxid % 128:
        pass
    lines = [ln for ln in four(port, "hash").splitlines() if ln.strip()]
    mine = tree_digest(k, OWNERS)
    k.stop()
    d = (lines[-1].split(": ") + [""])[1] if lines else ""
    case("ZooKeeper's own digest of the export (its `hash`) is the digest of the tree it serves",
         d and int(d) == mine, f"hash {lines[-1:]}, tree {mine}")


def main():
    binary = paddock_binary()
    if not binary:
        return 1
    work = tempfile.mkdtemp(prefix="paddock-import-")
    ctx = Ctx(binary, work)
    try:
        zk_dir, zk_tree, pd, pd_dir = variant(ctx, "killed", [], kill=True)
        export(ctx, zk_tree, pd, pd_dir)
        again = run(binary, "import-zk", zk_dir, "--to", pd_dir)
        case("import-zk refuses a target that is not empty", again.returncode != 0
             and "not empty" in again.stderr, again.stderr[-300:])
        damaged(ctx)
        ctx.close()
        ctx.pids, ctx.servers = [], []
        variant(ctx, "gz", ["snapshot.compression.method=gz"], kill=False, log_apart=True)
        ctx.close()
        ctx.pids, ctx.servers = [], []
        variant(ctx, "snappy", ["snapshot.compression.method=snappy", "digest.enabled=false",
                                "closeSessionTxn.enabled=false"], kill=False)
    finally:
        ctx.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"import: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
