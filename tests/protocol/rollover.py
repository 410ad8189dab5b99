#!/usr/bin/env python3
"""zxid counter rollover without an election (issue 18), on real servers.

A zxid is (epoch << 32 | counter). When the leader stamps the last counter, it moves the
ensemble to the next epoch itself, in one quorum round trip (crates/zab/src/rollover.rs),
where ZooKeeper steps down and holds an election (ZOOKEEPER-1277, 2789). `zxidCounterBits=8`
(Paddock's own key, for tests) makes an epoch 255 transactions long, so an ensemble under load
rolls over many times in seconds instead of after 2^32 writes:

- a three-server ensemble under pipelined writes from clients of every server: the epoch
  advances many times; the same server leads throughout; no client sees a disconnection or a
  failed request; every write a client was told of is there, and no zxid's counter passes 255;
- a standalone server (a one-voter ensemble) does the same alone.

  tests/protocol/rollover.py [--bin target/release/paddock] [--keep]
"""

import os
import socket
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient

from common import HOSTS, Ensemble, case, free_port, main

BITS = 8
COUNTER_MAX = (1 << BITS) - 1


class Pipeliner(threading.Thread):
    """Creates sequential znodes 50 at a time, recording every path it was told it created."""

    def __init__(self, hosts, name, rounds):
        super().__init__(daemon=True)
        self.name_, self.rounds = name, rounds
        self.k = KazooClient(hosts, timeout=6, command_retry={"max_tries": 0},
                             connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.2})
        self.states = []
        self.k.start(15)
        # Every state change after the first connection: there must be none.
        self.k.add_listener(self.states.append)
        self.k.ensure_path("/seq")
        self.created, self.failed = [], []

    def run(self):
        for _ in range(self.rounds):
            batch = [self.k.create_async(f"/seq/{self.name_}-", b"x", sequence=True)
                     for _ in range(50)]
            for r in batch:
                try:
                    self.created.append(r.get(30))
                except Exception as e:  # noqa: BLE001
                    self.failed.append(repr(e))


def zxids(k):
    """(czxid of every node under /seq, by path)."""
    return {c: k.exists(f"/seq/{c}").czxid for c in k.get_children("/seq")}


def check_run(what, k, writers, leader_before, leader_after):
    for w in writers:
        w.join(120)
    created = [p for w in writers for p in w.created]
    failed = [f for w in writers for f in w.failed]
    states = {w.name_: w.states for w in writers}
    case(f"{what}: every request answered, no disconnection",
         not failed and all(s == [] for s in states.values()) and not any(w.is_alive()
                                                                          for w in writers),
         f"{len(failed)} failed ({failed[:2]}), states {states}")
    seen = zxids(k)
    names = {p.rsplit("/", 1)[1] for p in created}
    epochs = {z >> 32 for z in seen.values()}
    case(f"{what}: every acknowledged create is there ({len(names)})",
         len(names) == len(created) and names <= set(seen), f"{len(names & set(seen))} found")
    case(f"{what}: no counter past {COUNTER_MAX}",
         all(z & 0xFFFFFFFF <= COUNTER_MAX for z in seen.values()))
    case(f"{what}: {len(epochs)} epochs, one after the other, in {len(seen)} creates",
         len(epochs) >= len(seen) // COUNTER_MAX and max(epochs) - min(epochs) + 1 == len(epochs),
         f"epochs {sorted(epochs)}")
    case(f"{what}: the same server led throughout (no election)", leader_before == leader_after,
         f"{leader_before} -> {leader_after}")


def ensemble(binary, work, _args):
    ens = Ensemble(binary, work, "ens")
    extra = [f"zxidCounterBits={BITS}", "4lw.commands.whitelist=*"]
    try:
        for m in ens.members.values():
            m.start(extra)
        modes = ens.wait_serving(list(HOSTS))
        case("a three-server ensemble with zxidCounterBits=8 serves",
             sorted(map(str, modes.values())) == ["follower", "follower", "leader"], f"{modes}")
        leader = next((s for s, mode in modes.items() if mode == "leader"), None)
        writers = [Pipeliner(f"{m.host}:{m.client_port}", f"c{sid}", 20)
                   for sid, m in ens.members.items()]
        for w in writers:
            w.start()
        for w in writers:
            w.join(120)
        after = ens.wait_serving(list(HOSTS))
        leader_after = next((s for s, mode in after.items() if mode == "leader"), None)
        k = KazooClient(ens.hosts(), timeout=10)
        k.start(15)
        k.sync("/seq")
        check_run("ensemble", k, writers, leader, leader_after)
        k.stop()
        logs = "".join(m.text() for m in ens.members.values())
        rolled = logs.count("moved to the next epoch without an election")
        case(f"the leader logged each rollover ({rolled})", rolled >= 10, logs[-800:])
        case("no server looked for a leader after the first election",
             logs.count("role changed role=Looking") == 3 and "became an election" not in logs,
             f"{logs.count('role changed role=Looking')} lines 'role changed role=Looking'")
    finally:
        ens.stop()


def standalone(binary, work, _args):
    port = free_port()
    data = os.path.join(work, "standalone")
    log = os.path.join(work, "standalone.log")
    p = subprocess.Popen([binary, "server", f"-Dzookeeper.clientPort={port}",
                          f"-Dzookeeper.dataDir={data}", f"-Dzookeeper.zxidCounterBits={BITS}",
                          "-Dzookeeper.admin.enableServer=false"],
                         stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"srvr")
                    if b"Mode: standalone" in sock.recv(4096):
                        break
            except OSError:
                pass
            time.sleep(0.1)
        w = Pipeliner(f"127.0.0.1:{port}", "solo", 20)
        w.start()
        w.join(120)
        k = KazooClient(f"127.0.0.1:{port}", timeout=10)
        k.start(15)
        check_run("standalone", k, [w], "solo", "solo" if p.poll() is None else "exited")
        k.stop()
    finally:
        p.terminate()
        p.wait(30)


if __name__ == "__main__":
    sys.exit(main("rollover", [ensemble, standalone]))
