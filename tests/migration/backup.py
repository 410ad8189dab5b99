#!/usr/bin/env python3
"""Backup and restore in ZooKeeper's format: `paddock backup` (the AdminServer's `snapshot`
command, ZooKeeper 3.9's) from a follower of a three-server Paddock ensemble under write load,
then `paddock restore` of that file into a new three-server ensemble.

The test knows the tree at every zxid: it dumps the tree before the load (every path, data,
Stat field and ACL), and the load records the Stat of every write it makes. So the tree at
the backup's zxid is computed independently, and the restored ensemble must serve exactly
that, digest included; Apache ZooKeeper 3.8 started on the backup file must serve it too.
Also: no identity with ALL on / gets 403, a second backup within
admin.rateLimiterIntervalInMS gets 429, admin.snapshot.enabled=false gets 503, and a
directory that holds data is not restored into.

  tests/migration/backup.py [--bin target/release/paddock]
"""

import copy
import os
import shutil
import sys
import tempfile
import threading
import time

from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "tests", "security"))
from check import case, failures, free_port  # noqa: E402
from quorum import Ensemble  # noqa: E402
from common import (AUTH, dump, dump_digest, paddock_binary, run, same_tree,  # noqa: E402
                    start_zk, stat_tuple)


class Load(threading.Thread):
    """Creates sequential nodes under /load and sets /counter, recording each write's Stat."""

    def __init__(self, hosts, n):
        super().__init__(daemon=True)
        self.hosts, self.n = hosts, n
        self.events, self.stop_ = [], threading.Event()

    def run(self):
        k = KazooClient(self.hosts, timeout=10, auth_data=AUTH)
        k.start(15)
        i = 0
        try:
            while not self.stop_.is_set():
                data = f"{self.n}-{i}".encode()
                if i % 2:
                    path, st = k.create("/load/n-", data, sequence=True, include_data=True)
                    self.events.append(("create", path, data, st))
                else:
                    st = k.set(f"/counter{self.n}", data)
                    self.events.append(("set", f"/counter{self.n}", data, st))
                i += 1
        finally:
            k.stop()


def tree_at(before, events, zxid):
    """The tree at `zxid`: the dump before the load, plus the load's writes up to it."""
    tree = copy.deepcopy(before)
    for op, path, data, st in sorted(events, key=lambda e: e[3].mzxid):
        if st.mzxid > zxid:
            break
        acl = tree.get(path, (None, None, [(31, "world", "anyone")]))[2]
        tree[path] = (data, stat_tuple(st), acl)
        if op == "create":
            pdata, pst, pacl = tree["/load"]
            pst = list(pst)
            pst[6] += 1  # cversion
            pst[2] = max(pst[2], st.czxid)  # pzxid
            pst[10] += 1  # numChildren
            tree["/load"] = (pdata, tuple(pst), pacl)
    return tree


def compare(what, want, got):
    # /zookeeper/config is each ensemble's own membership, written by its servers at start.
    want, got = ({p: v for p, v in t.items() if p != "/zookeeper/config"} for t in (want, got))
    same_tree(what, (want, dump_digest(want)), (got, dump_digest(got)), 100)


def main():
    binary = paddock_binary()
    if not binary:
        return 1
    work = tempfile.mkdtemp(prefix="paddock-backup-")
    admin = free_port()
    ensembles, zk_pids = [], []

    def extra(m, *more):
        return [f"admin.serverAddress={m.host}", f"admin.serverPort={admin}",
                "admin.rateLimiterIntervalInMS=5000", "4lw.commands.whitelist=*", *more]
    try:
        ens = Ensemble(binary, work, "original")
        ensembles.append(ens)
        for m in ens.members.values():
            m.start(extra(m))
        modes = ens.wait_serving(list(ens.members))
        case("the original ensemble serves", sorted(map(str, modes.values())) == ["follower", "follower",
                                                                       "leader"], f"{modes}")
        follower = next(ens.members[s] for s, mode in modes.items() if mode == "follower")

        k = KazooClient(ens.hosts(), timeout=10, auth_data=AUTH)
        k.start(15)
        k.set_acls("/", [make_digest_acl("ops", "pw", all=True),
                         make_acl("world", "anyone", read=True)])
        k.create("/app", b"app")
        # Enough nodes that the backup's walk takes several chunks while the load writes.
        for batch in range(0, 4000, 500):
            for r in [k.create_async("/app/seq-", b"%d" % i, sequence=True)
                      for i in range(batch, batch + 500)]:
                r.get(10)
        k.create("/app/secret", b"s", acl=[make_digest_acl("ops", "pw", all=True)])
        k.create("/app/big", b"b" * 500_000)
        k.create("/load")
        k.create("/counter1", b"")
        k.create("/counter2", b"")
        k.stop()
        before = snapshot_of(ens)

        loads = [Load(ens.hosts(), n) for n in (1, 2)]
        for load in loads:
            load.start()
        time.sleep(1.5)
        server = f"{follower.host}:{admin}"
        backup = os.path.join(work, "backup.zksnap")
        r = run(binary, "backup", "-server", server, "--digest", "ops:pw", backup)
        case("paddock backup takes the tree from a follower under write load",
             r.returncode == 0 and os.path.exists(backup), r.stdout + r.stderr[-1000:])
        print("\n".join("     " + ln for ln in r.stdout.splitlines()))
        taken = [ln for ln in follower.text().splitlines() if "backup taken" in ln]
        print(f"     server: {taken[-1].split('backup taken')[-1].strip() if taken else '?'}")
        again = run(binary, "backup", "-server", server, "--digest", "ops:pw",
                    os.path.join(work, "again.zksnap"))
        case("a second backup within admin.rateLimiterIntervalInMS is refused (429)",
             again.returncode != 0 and "429" in again.stderr, again.stderr[-300:])
        other = next(m for m in ens.members.values() if m is not follower)
        anon = run(binary, "backup", "-server", f"{other.host}:{admin}",
                   os.path.join(work, "anon.zksnap"))
        case("a backup without an identity holding ALL on / is refused (403)",
             anon.returncode != 0 and "403" in anon.stderr
             and not os.path.exists(os.path.join(work, "anon.zksnap")), anon.stderr[-300:])
        time.sleep(0.5)
        for load in loads:
            load.stop_.set()
        for load in loads:
            load.join(20)
        zxid = int(next(ln.split()[-1] for ln in r.stdout.splitlines()
                        if ln.split()[:1] == ["zxid"]), 16)
        events = [e for load in loads for e in load.events]
        after = sum(1 for e in events if e[3].mzxid > zxid)
        case(f"the load wrote before and after the backup's zxid 0x{zxid:x}",
             after > 0 and len(events) - after > 0, f"{len(events)} writes, {after} after")
        want = tree_at(before, events, zxid)
        ens.stop()

        new = Ensemble(binary, work, "restored")
        ensembles.append(new)
        for m in new.members.values():
            r = run(binary, "restore", backup, "--to", os.path.join(m.dir, "data"))
            if r.returncode != 0:
                break
        case("paddock restore makes each new server's data directory from the backup",
             r.returncode == 0 and "matches the backup's" in r.stdout,
             r.stdout + r.stderr[-1000:])
        print("\n".join("     " + ln for ln in r.stdout.splitlines()))
        again = run(binary, "restore", backup, "--to", os.path.join(new.members[1].dir, "data"))
        case("restore refuses a directory that holds data", again.returncode != 0
             and "not empty" in again.stderr, again.stderr[-300:])
        for m in new.members.values():
            m.start(extra(m, "admin.snapshot.enabled=false"))
        modes = new.wait_serving(list(new.members))
        case("the restored ensemble serves", sorted(map(str, modes.values())) == ["follower", "follower",
                                                                       "leader"], f"{modes}")
        compare("the restored ensemble serves the tree as it was at the backup's zxid",
                want, snapshot_of(new))
        off = run(binary, "backup", "-server", f"{new.members[1].host}:{admin}", "--digest",
                  "ops:pw", os.path.join(work, "off.zksnap"))
        case("admin.snapshot.enabled=false: the command is off (503)",
             off.returncode != 0 and "503" in off.stderr, off.stderr[-300:])
        online_restore(binary, new, admin, backup, want)
        # The restore is in every server's log: a restart replays it (or starts from a
        # snapshot taken after it) into the same tree.
        settled = snapshot_of(new)
        new.stop()
        for m in new.members.values():
            m.start(extra(m, "admin.snapshot.enabled=false"))
        modes = new.wait_serving(list(new.members))
        case("the ensemble serves again after a restart", sorted(map(str, modes.values()))
             == ["follower", "follower", "leader"], f"{modes}")
        compare("after a restart, every server serves the restored tree it served before",
                settled, snapshot_of(new))
        new.stop()

        # The backup is ZooKeeper's snapshot format: ZooKeeper 3.8 starts on it.
        zk_dir = os.path.join(work, "zk")
        os.makedirs(os.path.join(zk_dir, "version-2"))
        shutil.copy(backup, os.path.join(zk_dir, "version-2", f"snapshot.{zxid:x}"))
        port = free_port()
        zk_pids.append(start_zk(port, zk_dir))
        compare("Apache ZooKeeper 3.8 started on the backup file serves the same tree", want,
                dump(f"127.0.0.1:{port}"))
    finally:
        for e in ensembles:
            e.stop()
        for p in zk_pids:
            try:
                os.kill(p, 15)
            except OSError:
                pass
        shutil.rmtree(work, ignore_errors=True)
    print(f"backup: {len(failures)} failed")
    return 1 if failures else 0


def online_restore(binary, ens, admin, backup, want):
    """The AdminServer's `restore` on a running ensemble: the tree moves on (changes, deletes,
    a live session's ephemeral, a writer that keeps writing through the restore), then the
    backup is restored online and every server serves the backup's tree, the live session
    goes on, and its watches hear what changed."""
    admins = ",".join(f"{m.host}:{admin}" for m in ens.members.values())
    k = KazooClient(ens.hosts(), timeout=10, auth_data=AUTH)
    k.start(15)
    k.set("/app", b"changed after the backup")
    for child in sorted(k.get_children("/app"))[:10]:
        k.delete(f"/app/{child}")
    k.create("/after", b"made after the backup")
    k.create("/live-eph", b"", ephemeral=True)
    heard = {"data": [], "child": []}
    k.get("/app", watch=lambda e: heard["data"].append(e.type))
    k.get_children("/app", watch=lambda e: heard["child"].append(e.type))
    k.exists("/after", watch=lambda e: heard.setdefault("after", []).append(e.type))
    stop, writes, errors = threading.Event(), [0], []

    def writer():
        w = KazooClient(ens.hosts(), timeout=10, auth_data=AUTH)
        w.start(15)
        while not stop.is_set():
            try:
                w.set("/counter1", b"w%d" % writes[0])
                writes[0] += 1
            except Exception as e:  # noqa: BLE001 - every failure is reported below
                errors.append(repr(e))
        w.stop()
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(0.5)
    anon = run(binary, "restore", backup, "-server", admins)
    case("an online restore without an identity holding ALL on / is refused (403)",
         anon.returncode != 0 and "403" in anon.stderr, anon.stderr[:400])
    r = run(binary, "restore", backup, "-server", admins, "--digest", "ops:pw")
    case("paddock restore -server restores the running ensemble through its leader",
         r.returncode == 0 and "applied at" in r.stdout, r.stdout + r.stderr[:1000])
    print("\n".join("     " + ln for ln in r.stdout.splitlines()))
    again = run(binary, "restore", backup, "-server", admins, "--digest", "ops:pw")
    case("a second restore within admin.rateLimiterIntervalInMS is refused (429)",
         again.returncode != 0 and "429" in again.stderr, again.stderr[:400])
    time.sleep(0.5)
    stop.set()
    t.join(20)
    case("a writer kept writing through the restore", writes[0] > 0 and not errors,
         f"{writes[0]} writes, errors {errors[:3]}")
    # /counter1 went on changing after the restore; the rest is the backup's.
    want = {p: v for p, v in want.items() if p != "/counter1"}
    for m in ens.members.values():
        got = {p: v for p, v in dump(f"{m.host}:{m.client_port}").items() if p != "/counter1"}
        compare(f"server {m.sid} serves the backup's tree after the online restore", want, got)
    trees = [dump(f"{m.host}:{m.client_port}") for m in ens.members.values()]
    case("every server holds the same /counter1 after the restore",
         len({repr(t.get("/counter1")) for t in trees}) == 1, "")
    time.sleep(0.3)
    case("the live session's watches heard the restore",
         heard["data"] == ["CHANGED"] and heard["child"] == ["CHILD"]
         and heard.get("after") == ["DELETED"], f"{heard}")
    k.create("/post-restore", b"ok")
    case("the live session goes on writing after the restore",
         k.exists("/post-restore") is not None and k.exists("/live-eph") is None, "")
    k.stop()


def snapshot_of(ens):
    """A dump of the tree from the ensemble's first server."""
    m = ens.members[1]
    return dump(f"{m.host}:{m.client_port}")


if __name__ == "__main__":
    sys.exit(main())
