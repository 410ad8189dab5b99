#!/usr/bin/env python3
"""ZooKeeper's tree digest: Paddock computes it exactly as ZooKeeper 3.8 does.

The same workload runs against Apache ZooKeeper 3.8 (Debian's package) and Paddock: every kind of
write (persistent, sequential and ephemeral creates, data from empty to 100 kB, setData, setACL,
deletes, multi), then setData until the zxid is a multiple of 128, where both log a digest. The
test reads the whole tree back through a client (path, data and Stat of every node) and computes
ZooKeeper's digest from it (DigestCalculator: CRC-32 of the path, the data and 60 bytes of the
stored Stat, summed over every node outside /zookeeper/). On ZooKeeper this checks the formula
against ZooKeeper's own `hash`; on Paddock, Paddock's `hash` four-letter word and AdminServer
command against the same formula.

  tests/migration/digest.py [--bin target/release/paddock]
"""

import json
import os
import shutil
import sys
import tempfile
import urllib.request

from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "tests", "security"))
from check import Server, case, failures, free_port  # noqa: E402
from common import four, paddock_binary, start_zk, tree_digest  # noqa: E402


def workload(k):
    """Every kind of write; returns the zxid of the last one, a multiple of 128."""
    k.create("/app", b"root of the app")
    k.create("/app/config", b'{"a": 1}')
    for i in range(20):
        k.create("/app/jobs/job-", f"job {i}".encode(), sequence=True, makepath=True)
    k.create("/app/big", b"x" * 100_000)
    k.create("/app/empty", b"")
    k.create("/app/eph", b"mine", ephemeral=True)
    k.create("/app/eph-seq-", b"", ephemeral=True, sequence=True)
    k.set_acls("/app/config", [make_digest_acl("ops", "pw", all=True)])
    for i in range(5):
        k.set("/app/big", bytes([i]) * (1000 * (i + 1)))
    for c in sorted(k.get_children("/app/jobs"))[:7]:
        k.delete(f"/app/jobs/{c}")
    tx = k.transaction()
    tx.create("/app/multi-a", b"a")
    tx.create("/app/multi-b", b"b")
    tx.delete("/app/empty")
    tx.commit()
    k.ensure_path("/pad")
    while True:
        st = k.set("/pad", b"p")
        if st.mzxid % 128 == 0:
            return st.mzxid


def last_hash(port):
    lines = [ln for ln in four(port, "hash").splitlines() if ln.strip()]
    if not lines:
        return None, None
    z, d = lines[-1].split(": ")
    return int(z, 16), int(d)


def client(port):
    # The workload's digest ACL lets this identity read every node back.
    return KazooClient(f"127.0.0.1:{port}", timeout=10, auth_data=[("digest", "ops:pw")])


def check(name, port, admin=None):
    k = client(port)
    k.start(15)
    try:
        zxid = workload(k)
        mine = tree_digest(k)
        z, d = last_hash(port)
        case(f"{name}: `hash` lists the digest at 0x{zxid:x}, the formula over the tree read back",
             z == zxid and d == mine, f"hash says {z and hex(z)}: {d}; computed {mine}")
        if admin:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/commands/hash", timeout=10) as r:
                body = json.loads(r.read())
            last = (body.get("digests") or [{}])[-1]
            case(f"{name}: the AdminServer's hash command says the same",
                 last.get("zxid") == zxid and last.get("digest") == mine
                 and last.get("digestVersion") == 2, json.dumps(body)[-300:])
        return mine
    finally:
        k.stop()


def main():
    binary = paddock_binary()
    if not binary:
        return 1
    work = tempfile.mkdtemp(prefix="paddock-digest-")
    zk_pid = None
    pd = None
    try:
        zk_port = free_port()
        zk_pid = start_zk(zk_port, os.path.join(work, "zk"))
        check("ZooKeeper 3.8", zk_port)
        admin = free_port()
        pd = Server(binary, work, "paddock", [
            "clientPort={port}", "4lw.commands.whitelist=*", f"admin.serverPort={admin}"])
        pd.wait_listening(pd.port)
        check("Paddock", pd.port, admin)
        # Restarted, the digest is computed afresh from the snapshot and log: the same.
        k = client(pd.port)
        k.start(15)
        before = tree_digest(k)
        k.stop()
        pd.stop()
        pd = Server(binary, work, "paddock", [
            "clientPort={port}", "4lw.commands.whitelist=*", f"admin.serverPort={admin}"])
        pd.wait_listening(pd.port)
        k = client(pd.port)
        k.start(15)
        while True:
            st = k.set("/pad", b"q")
            if st.mzxid % 128 == 0:
                break
        after = tree_digest(k)
        k.stop()
        z, d = last_hash(pd.port)
        case("Paddock after a restart: the digest kept from the recovered tree is right",
             z == st.mzxid and d == after and after != before, f"{z} {d} {after} {before}")
    finally:
        if pd:
            pd.stop()
        if zk_pid:
            try:
                os.kill(zk_pid, 15)
            except OSError:
                pass
        shutil.rmtree(work, ignore_errors=True)
    print(f"digest: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
