#!/usr/bin/env python3
"""`paddock import-zk`: a data directory Apache ZooKeeper 3.8 wrote (Debian's package) comes
across whole.

ZooKeeper runs a workload with a small snapCount (so the import spans snapshots and logs) and is
killed with SIGKILL while a client writes. Then:

- `paddock import-zk` reads the directory and writes a Paddock one, checking ZooKeeper's digests
  where the files carry them;
- Paddock started on the import and ZooKeeper restarted on its own directory serve the same tree:
  every path, its data, every Stat field and its ACL, compared through kazoo;
- a copy whose last log is cut inside its last record imports without that record (a torn
  tail); a copy with a corrupt record in the middle of a log is refused, naming the file and
  offset; a non-empty target is refused.

  tests/migration/import.py [--bin target/release/paddock]
"""

import argparse
import os
import shutil
import signal
import subprocess
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

AUTH = [("digest", "ops:pw")]


def start_zk(port, d):
    out = subprocess.run(
        [os.path.join(repo, "scripts", "start-zookeeper.sh"), str(port), d, "snapCount=40",
         "4lw.commands.whitelist=*"], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"ZooKeeper did not start: {out.stderr[-500:]}")
    return int(out.stdout.strip().split()[-1])


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
    """Every node: path -> (data, Stat fields, ACL)."""
    k = KazooClient(f"127.0.0.1:{port}", timeout=30, auth_data=AUTH)
    k.start(15)
    out = {}
    stack = ["/"]
    while stack:
        p = stack.pop()
        data, st = k.get(p)
        acl, _ = k.get_acls(p)
        out[p] = (data, (st.czxid, st.mzxid, st.pzxid, st.ctime, st.mtime, st.version,
                         st.cversion, st.aversion, st.ephemeralOwner, st.dataLength,
                         st.numChildren),
                  sorted((a.perms, a.id.scheme, a.id.id) for a in acl))
        stack.extend((p.rstrip("/") + "/" + c) for c in k.get_children(p))
    k.stop()
    return out


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=300)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(repo, "target", "release", "paddock"))
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    if not os.path.exists(binary):
        print(f"FAIL {binary} is missing (cargo build --release)")
        return 1
    work = tempfile.mkdtemp(prefix="paddock-import-")
    zk_dir = os.path.join(work, "zk")
    zk_port = free_port()
    pids = []
    pd = None
    try:
        pid = start_zk(zk_port, zk_dir)
        pids.append(pid)  # killed below; stopped in `finally` if the workload fails first
        k = workload(binary, zk_port)
        # Killed while a client writes: SIGKILL, no clean shutdown.
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
        v2 = os.path.join(zk_dir, "version-2")
        names = sorted(os.listdir(v2))
        snaps = [n for n in names if n.startswith("snapshot.")]
        logs = [n for n in names if n.startswith("log.")]
        case("ZooKeeper left several snapshots and logs", len(snaps) >= 2 and len(logs) >= 2,
             f"{names}")
        # Copies for the damaged variants, before anything starts on the directory again.
        torn = os.path.join(work, "torn")
        corrupt = os.path.join(work, "corrupt")
        shutil.copytree(zk_dir, torn)
        shutil.copytree(zk_dir, corrupt)

        pd_dir = os.path.join(work, "paddock-data")
        r = run(binary, "import-zk", zk_dir, "--to", pd_dir)
        case("paddock import-zk reads ZooKeeper's directory; its digests match",
             r.returncode == 0 and "digests match" in r.stdout, r.stdout + r.stderr[-2000:])
        print("\n".join("     " + ln for ln in r.stdout.splitlines()))
        again = run(binary, "import-zk", zk_dir, "--to", pd_dir)
        case("a non-empty target is refused", again.returncode != 0
             and "not empty" in again.stderr, again.stderr[-300:])

        pids.append(start_zk(zk_port, zk_dir))
        pd = Server(binary, work, "paddock", [
            "clientPort={port}", f"dataDir={pd_dir}", "tickTime=2000", "4lw.commands.whitelist=*"])
        pd.wait_listening(pd.port)
        time.sleep(1)
        zk_tree, pd_tree = dump(zk_port), dump(pd.port)
        diff = sorted(p for p in set(zk_tree) | set(pd_tree) if zk_tree.get(p) != pd_tree.get(p))
        case(f"Paddock on the import serves the tree ZooKeeper serves ({len(zk_tree)} znodes: "
             "data, every Stat field, ACL)", not diff and len(zk_tree) > 30,
             f"{len(diff)} differ, first {diff[:3]}: zk {zk_tree.get(diff[0]) if diff else ''} "
             f"paddock {pd_tree.get(diff[0]) if diff else ''}")

        # A torn tail: the newest log cut inside its last record.
        tv2 = os.path.join(torn, "version-2")
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
    finally:
        if pd:
            pd.stop()
        for p in pids:
            try:
                os.kill(p, signal.SIGTERM)
            except OSError:
                pass
        shutil.rmtree(work, ignore_errors=True)
    print(f"import: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
