"""What the migration tests share: Apache ZooKeeper 3.8 started and stopped, a whole tree read
through kazoo, ZooKeeper's tree digest computed from it, and the paddock binary run."""

import argparse
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib

from kazoo.client import KazooClient

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "tests", "security"))
from check import case  # noqa: E402

# The tests' digest user: its ACLs let it read every node back.
AUTH = [("digest", "ops:pw")]


def paddock_binary():
    """The `--bin` argument (target/release/paddock by default) as an absolute path, or None
    once a FAIL line says it is missing."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(repo, "target", "release", "paddock"))
    binary = os.path.abspath(ap.parse_args().bin)
    if not os.path.exists(binary):
        print(f"FAIL {binary} is missing (cargo build --release)")
        return None
    return binary


def same_tree(what, a, b, min_nodes):
    """Two trees read by `read_tree`, each with its digest, (tree, digest), are equal, and the
    first holds more than `min_nodes` nodes; says so, and where they differ."""
    (ta, da), (tb, db) = a, b
    diff = sorted(p for p in set(ta) | set(tb) if ta.get(p) != tb.get(p))
    case(f"{what} ({len(ta)} znodes: data, every Stat field, ACL; digest {da})",
         not diff and len(ta) > min_nodes and da == db,
         f"digests {da} / {db}; {len(diff)} differ, first {diff[:3]}: "
         f"{ta.get(diff[0]) if diff else ''} / {tb.get(diff[0]) if diff else ''}")


def run(binary, *args, timeout=600):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)


def start_zk(port, d, extra=()):
    """ZooKeeper 3.8 standalone on `port` with dataDir `d` (scripts/start-zookeeper.sh, with
    extended types for TTL nodes); its pid."""
    out = subprocess.run(
        [os.path.join(repo, "scripts", "start-zookeeper.sh"), str(port), d,
         "4lw.commands.whitelist=*", "extendedTypesEnabled=true", *extra],
        capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"ZooKeeper did not start: {out.stderr[-500:]}")
    return int(out.stdout.strip().split()[-1])


def stop_zk(pid):
    """SIGTERM, and wait for the JVM to be gone (ZooKeeper's clean stop)."""
    os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def four(port, word):
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(word.encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


def stat_tuple(st):
    return (st.czxid, st.mzxid, st.pzxid, st.ctime, st.mtime, st.version, st.cversion,
            st.aversion, st.ephemeralOwner, st.dataLength, st.numChildren)


def read_tree(k, acls=True):
    """Every node through client `k`: path -> (data, stat_tuple, sorted ACL or None)."""
    out = {}
    stack = ["/"]
    while stack:
        p = stack.pop()
        data, st = k.get(p)
        acl = None
        if acls:
            acl = sorted((a.perms, a.id.scheme, a.id.id) for a in k.get_acls(p)[0])
        out[p] = (data, stat_tuple(st), acl)
        stack.extend((p.rstrip("/") + "/" + c) for c in k.get_children(p))
    return out


def dump(hosts):
    """The whole tree as the server (after a sync) serves it, read as the digest user."""
    k = KazooClient(hosts, timeout=30, auth_data=AUTH)
    k.start(15)
    try:
        k.sync("/")
        return read_tree(k)
    finally:
        k.stop()


def dump_digest(tree, owners=None):
    """ZooKeeper's DigestCalculator (CRC-32 of the path, the data and the 60 bytes of the stored
    Stat, summed over every node outside /zookeeper/) over a tree read by `read_tree`. The stored
    cversion counts creates: the client sees 2 * stored - numChildren. Clients see the
    ephemeralOwner of a container or TTL node as 0; ZooKeeper stores (and digests) its marker:
    `owners` maps such paths to their stored owner."""
    total = 0
    for path, (data, st, _) in tree.items():
        if path.startswith("/zookeeper/"):
            continue
        czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion, owner, _, kids = st
        owner = (owners or {}).get(path, owner)
        b = struct.pack(">qqqqqiiiq", czxid, mzxid, pzxid, ctime, mtime, version,
                        (cversion + kids) // 2, aversion, owner)
        total += zlib.crc32((b"" if path == "/" else path.encode()) + (data or b"") + b)
    total &= (1 << 64) - 1
    return total - (1 << 64) if total >= 1 << 63 else total


def tree_digest(k, owners=None):
    """ZooKeeper's digest of the tree client `k` reads."""
    return dump_digest(read_tree(k, acls=False), owners)
