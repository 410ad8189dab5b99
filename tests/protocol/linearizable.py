#!/usr/bin/env python3
"""Linearizable reads without a client `sync` (issue 18, in progress), on real servers.

ZooKeeper's reads are served from each server's replica and may be stale: a client of one
follower can read an older value than another client was already told was written, unless it
calls `sync` first. With `linearizableReads=true` (Paddock's own key) every read a server answers
starts a sync of its own (batched by the leader's heartbeats) and runs once it is done.

- Three servers with the key on: a writer on one server and readers on the two others. After
  each acknowledged write, each reader reads: none may see an older value. A run of the same
  loop with the key off counts the stale reads it sees (ZooKeeper's semantics), for comparison.

  tests/protocol/linearizable.py [--bin target/release/paddock] [--rounds N]
"""

import argparse
import os
import shutil
import sys
import tempfile

from kazoo.client import KazooClient

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "tests", "security"))
from check import case, failures  # noqa: E402
from quorum import HOSTS, Ensemble  # noqa: E402


def run(binary, work, name, on, rounds):
    """Stale reads seen in `rounds` write-then-read rounds, and whether the ensemble served."""
    ens = Ensemble(binary, work, name)
    extra = ["4lw.commands.whitelist=*"] + (["linearizableReads=true"] if on else [])
    try:
        for m in ens.members.values():
            m.start(extra)
        modes = ens.wait_serving(list(HOSTS))
        if sorted(modes.values()) != ["follower", "follower", "leader"]:
            return None, f"{modes}"
        leader = next(s for s, mode in modes.items() if mode == "leader")
        followers = [s for s in HOSTS if s != leader]
        clients = []
        for sid in [leader] + followers:
            m = ens.members[sid]
            k = KazooClient(f"{m.host}:{m.client_port}", timeout=10)
            k.start(15)
            clients.append(k)
        writer, readers = clients[0], clients[1:]
        writer.create("/r", b"0")
        stale = 0
        for i in range(1, rounds + 1):
            writer.set("/r", str(i).encode())
            for r in readers:
                seen = int(r.get("/r")[0])
                if seen < i:
                    stale += 1
        for k in clients:
            k.stop()
        return stale, ""
    finally:
        ens.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(repo, "target", "release", "paddock"))
    ap.add_argument("--rounds", type=int, default=3000)
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    if not os.path.exists(binary):
        print(f"FAIL {binary} is missing (cargo build --release)")
        return 1
    work = tempfile.mkdtemp(prefix="paddock-linear-")
    try:
        off, why = run(binary, work, "off", False, a.rounds)
        print(f"     linearizableReads off: {off} stale reads in {2 * a.rounds}")
        on, why_on = run(binary, work, "on", True, a.rounds)
        case(f"linearizableReads on: no stale read in {2 * a.rounds} reads on followers right "
             "after a write acknowledged elsewhere", on == 0, f"{on} stale {why_on}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"linearizable: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
