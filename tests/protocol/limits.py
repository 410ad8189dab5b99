#!/usr/bin/env python3
"""Limits that never take the service down (issue 18), with kazoo against real servers.

- largeRequestThreshold / largeRequestMaxBytes, as ZooKeeper: requests above the threshold
  share the budget while in flight; one that cannot fit closes its own connection (the client
  reconnects to the same session), is counted in `large_requests_rejected`, and disturbs no
  other client; answered requests give their bytes back.
- A transaction too large for the log is refused up front: a 70 MB create on a server whose
  jute.maxbuffer lets it in gets BADARGUMENTS, and the server restarts cleanly.
- A session owning more ephemerals than one transaction may list (260,000 with long names:
  their paths alone pass the log's 64 MiB record limit) closes, its nodes go, and the server
  restarts cleanly (it once wrote a close record it could not read back).
- A reply far larger than jute.maxbuffer (getChildren of a node with 500,000 children) reaches
  kazoo whole, and other sessions are served meanwhile; `paddock cli ls` lists the node a
  page at a time (getChildrenPage).

  tests/protocol/limits.py [--bin target/release/paddock] [--keep]
"""

import os
import signal
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import BadArgumentsError, ConnectionLoss

from common import case, free_port, main, word


class Server:
    def __init__(self, binary, work, name, *props):
        self.binary, self.port = binary, free_port()
        self.data = os.path.join(work, name)
        self.log = os.path.join(work, name + ".log")
        self.props = [f"-Dzookeeper.clientPort={self.port}", f"-Dzookeeper.dataDir={self.data}",
                      "-Dzookeeper.admin.enableServer=false",
                      "-Dzookeeper.4lw.commands.whitelist=*", *props]
        self.p = None

    def start(self):
        self.p = subprocess.Popen([self.binary, "server", *self.props],
                                  stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.p.poll() is not None:
                return False
            if "imok" in self.word("ruok"):
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode if self.p else None

    def word(self, w):
        return word("127.0.0.1", self.port, w)

    def mntr(self, key):
        for line in self.word("mntr").splitlines():
            k, _, v = line.partition("\t")
            if k == f"zk_{key}":
                return int(v)
        return None

    def client(self, **kw):
        k = KazooClient(f"127.0.0.1:{self.port}", timeout=15, **kw)
        k.start(20)
        return k

    def tail(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-600:]


class Watcher:
    """Records every state a kazoo client goes through."""

    def __init__(self, k):
        self.states = []
        k.add_listener(self.states.append)


def outcome(call):
    """None if `call` succeeded, else what it raised."""
    try:
        call()
        return None
    except Exception as e:  # noqa: BLE001
        return e


def bulk_create(k, parent, names, ephemeral=False, per_multi=500):
    """Creates parent/name for every name, `per_multi` to a transaction, pipelined."""
    pending = []
    for i in range(0, len(names), per_multi):
        t = k.transaction()
        for n in names[i:i + per_multi]:
            t.create(f"{parent}/{n}", ephemeral=ephemeral)
        pending.append(t.commit_async())
        if len(pending) >= 16:
            pending.pop(0).get(60)
    for p in pending:
        p.get(60)


def large_requests(binary, work, _args):
    s = Server(binary, work, "budget", "-Dzookeeper.largeRequestThreshold=100000",
               "-Dzookeeper.largeRequestMaxBytes=150000")
    case("a server starts with largeRequestThreshold and largeRequestMaxBytes", s.start(),
         s.tail())
    try:
        other = s.client()
        seen = Watcher(other)
        k = s.client(connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.2})
        sid = k.client_id[0]
        k.create("/big")
        ok = 0
        for i in range(20):
            k.create(f"/big/n{i}", b"x" * 120_000)
            ok += 1
        case("20 large requests one after another (120 KB each, 150 KB budget): each gives its "
             "bytes back when answered", ok == 20, f"{ok} created")
        before = s.mntr("large_requests_rejected")
        got = outcome(lambda: k.create("/big/too-large", b"x" * 200_000))
        after = s.mntr("large_requests_rejected")
        case("a request that cannot fit the budget closes its connection (CONNECTIONLOSS) and is "
             "counted in large_requests_rejected",
             isinstance(got, ConnectionLoss) and before is not None and after == before + 1,
             f"{got!r}, large_requests_rejected {before} -> {after}")
        deadline = time.time() + 15
        while time.time() < deadline and k.state != KazooState.CONNECTED:
            time.sleep(0.05)
        case("the client reconnects to the same session and goes on",
             k.state == KazooState.CONNECTED and k.client_id[0] == sid
             and k.exists("/big/too-large") is None and k.create("/big/after", b"y" * 120_000),
             f"{k.state}")
        other.set("/big", b"still here")
        case("another client saw no disconnection", seen.states == [], f"{seen.states}")
        k.stop()
        other.stop()
    finally:
        s.stop()


def transaction_size(binary, work, _args):
    s = Server(binary, work, "txn", "-Dzookeeper.jute.maxbuffer=80000000")
    case("a server starts with jute.maxbuffer=80000000", s.start(), s.tail())
    try:
        k = s.client()
        got = outcome(lambda: k.create("/huge", b"z" * 70_000_000))
        case("a 70 MB create, let in by jute.maxbuffer but too large for the log, gets "
             "BADARGUMENTS", isinstance(got, BadArgumentsError) and k.exists("/huge") is None, f"{got!r}")
        k.create("/after", b"ok")

        owner = s.client()
        owner.create("/eph")
        long = "e" * 250
        names = [f"{long}{i:06d}" for i in range(260_000)]
        t0 = time.time()
        bulk_create(owner, "/eph", names, ephemeral=True, per_multi=200)
        made = k.get_children("/eph", include_data=True)[1].numChildren
        case("260,000 ephemerals with 256-character names (67 MB of paths)", made == len(names),
             f"{made} in {time.time() - t0:.1f} s")
        owner.stop()
        left = k.get_children("/eph", include_data=True)[1].numChildren
        case("closing their session deletes them all", left == 0, f"{left} left")
        k.stop()
    finally:
        code = s.stop()
    case("the server stops cleanly", code == 0, f"exit {code}")
    started = s.start()
    try:
        case("and starts again on the same data directory", started, s.tail())
        if started:
            k = s.client()
            case("with the tree as it was", k.get("/after")[0] == b"ok"
                 and k.get_children("/eph") == [] and k.exists("/huge") is None)
            k.stop()
    finally:
        s.stop()


def wide_node(binary, work, _args):
    s = Server(binary, work, "wide")
    case("a server starts with the default jute.maxbuffer (1 MiB)", s.start(), s.tail())
    try:
        k = s.client()
        k.create("/wide")
        n = 500_000
        names = [f"c{i:07d}" for i in range(n)]
        t0 = time.time()
        bulk_create(k, "/wide", names, per_multi=1000)
        made = time.time() - t0
        other = s.client()
        seen = Watcher(other)
        stop = threading.Event()
        served = [0]

        def ping():
            while not stop.is_set():
                other.exists("/wide")
                served[0] += 1

        th = threading.Thread(target=ping)
        th.start()
        t0 = time.time()
        kids = k.get_children("/wide")
        took = time.time() - t0
        stop.set()
        th.join()
        case(f"kazoo lists a node with {n} children in one reply (about 8 MB, 8 times "
             f"jute.maxbuffer), made in {made:.1f} s, listed in {took:.2f} s",
             len(kids) == n and set(kids) == set(names), f"{len(kids)} children")
        case("another session is served meanwhile and not disconnected",
             served[0] > 0 and seen.states == [], f"{served[0]} reads, states {seen.states}")
        t0 = time.time()
        cli = subprocess.run([binary, "cli", "-server", f"127.0.0.1:{s.port}", "ls", "/wide"],
                             capture_output=True, text=True, timeout=120)
        line = cli.stdout.strip().splitlines()[-1] if cli.stdout.strip() else ""
        listed = line.strip("[]").split(", ") if line.startswith("[") else []
        case(f"`paddock cli ls` lists them all, a page at a time ({time.time() - t0:.2f} s)",
             cli.returncode == 0 and listed == names, f"{len(listed)} names, {cli.stderr[-300:]}")
        other.stop()
        k.stop()
    finally:
        s.stop()


if __name__ == "__main__":
    sys.exit(main("limits", [large_requests, transaction_size, wide_node]))
