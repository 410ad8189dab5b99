#!/usr/bin/env python3
"""Linearizable reads without a client `sync` (issue 18, in progress), on real servers.

ZooKeeper's reads are served from each server's replica and may be stale: a client of one
follower can read an older value than another client was already told was written, unless it
calls `sync` first. With `linearizableReads=true` (Paddock's own key) every read a server answers
starts a sync of its own (batched by the leader's heartbeats) and runs once it is done.

- Three servers with the key on: a writer on one server and readers on the two others. After
  each acknowledged write, each reader reads: none may see an older value. A run of the same
  loop with the key off counts the stale reads it sees (ZooKeeper's semantics), for comparison.

  tests/protocol/linearizable.py [--bin target/release/paddock] [--keep] [--rounds N]
"""

import sys

from kazoo.client import KazooClient

from common import HOSTS, Ensemble, case, main


def run(binary, work, name, on, rounds):
    """Stale reads seen in `rounds` write-then-read rounds, and whether the ensemble served."""
    ens = Ensemble(binary, work, name)
    extra = ["4lw.commands.whitelist=*"] + (["linearizableReads=true"] if on else [])
    try:
        for m in ens.members.values():
            m.start(extra)
        modes = ens.wait_serving(list(HOSTS))
        if sorted(map(str, modes.values())) != ["follower", "follower", "leader"]:
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


def compare(binary, work, args):
    off, _ = run(binary, work, "off", False, args.rounds)
    print(f"     linearizableReads off: {off} stale reads in {2 * args.rounds}")
    on, why = run(binary, work, "on", True, args.rounds)
    case(f"linearizableReads on: no stale read in {2 * args.rounds} reads on followers right "
         "after a write acknowledged elsewhere", on == 0, f"{on} stale {why}")


if __name__ == "__main__":
    sys.exit(main("linearizable", [compare],
                  lambda ap: ap.add_argument("--rounds", type=int, default=3000)))
