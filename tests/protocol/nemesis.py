#!/usr/bin/env python3
"""Linearizable reads under a nemesis, Jepsen-style: a history of reads and writes recorded on a
real three-server ensemble while servers are cut off from each other and the leader is killed,
then checked by a checker that accepts only linearizable histories. No client calls `sync`.

Each server runs in a network namespace of its own, joined to a bridge; the clients run in the
root namespace and reach every server throughout. The nemesis cuts one server off from the two
others (blackhole routes in its namespace: its clients still reach it, the classic case where a
deposed leader or a lagging follower answers reads from an old state), heals, and SIGKILLs the
leader and starts it again, in turn. Writers (kazoo, connected to every server) set three keys
to unique values; readers (kazoo, one pinned to each server) get them.

The checker: writes are ordered by their zxid (the node's mzxid after the write, which every
read returns too), so a history of these registers is linearizable exactly when
- every read returns a value that was written, with the zxid of that write, and no earlier than
  the write was invoked;
- every operation sees at least the zxid of every operation that completed before it was
  invoked (a write strictly more), per key.
Operations whose outcome is unknown (a connection lost mid-call) constrain nothing except
through what reads show of them. The checker is first run on made-up histories it must reject.

- With `linearizableReads=true` the history must be linearizable.
- With it off (ZooKeeper's semantics) the violations are counted and printed, for comparison.

Needs root (network namespaces) and iproute2.

  tests/protocol/nemesis.py [--bin target/release/paddock] [--keep] [--seconds N]
"""

import bisect
import os
import random
import signal
import subprocess
import threading
import time

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

from common import case, main

KEYS = ["/nem/k0", "/nem/k1", "/nem/k2"]


# ---- the checker ------------------------------------------------------------------------

class Op:
    """One call: kind 'r' or 'w', its key, value and zxid (None when unknown), invocation and
    completion times (completion None when the outcome is unknown)."""

    __slots__ = ("kind", "key", "value", "zxid", "inv", "cmp")

    def __init__(self, kind, key, value, zxid, inv, cmp):
        self.kind, self.key, self.value, self.zxid, self.inv, self.cmp = (
            kind, key, value, zxid, inv, cmp)

    def __repr__(self):
        return (f"{self.kind} {self.key}={self.value!r}@{self.zxid} "
                f"[{self.inv:.3f}, {'?' if self.cmp is None else f'{self.cmp:.3f}'}]")


def check(history):
    """The violations of linearizability in `history` (a list of Op), as strings."""
    bad = []
    for key in sorted({o.key for o in history}):
        ops = [o for o in history if o.key == key]
        writes = {}
        for o in ops:
            if o.kind == "w":
                if o.value in writes:
                    bad.append(f"two writes of {o.value!r} to {key}")
                writes[o.value] = o
        # What reads say of each value's zxid, and whether each read is possible at all.
        learned = {}
        for r in (o for o in ops if o.kind == "r" and o.cmp is not None):
            w = writes.get(r.value)
            if w is None:
                bad.append(f"{r}: reads a value nobody wrote")
                continue
            if w.zxid is not None and w.zxid != r.zxid:
                bad.append(f"{r}: the write of that value has zxid {w.zxid}")
            if learned.setdefault(r.value, r.zxid) != r.zxid:
                bad.append(f"{r}: another read saw that value at zxid {learned[r.value]}")
            if r.cmp < w.inv:
                bad.append(f"{r}: completes before {w} was invoked")
        # Real time: an op sees at least the zxid of every op completed before it was invoked.
        done = sorted((o for o in ops if o.cmp is not None and o.zxid is not None),
                      key=lambda o: o.cmp)
        ends = [o.cmp for o in done]
        best = []  # best[i]: the op with the highest zxid among done[:i+1]
        for o in done:
            best.append(o if not best or o.zxid > best[-1].zxid else best[-1])
        for b in done:
            i = bisect.bisect_left(ends, b.inv)
            if i == 0:
                continue
            a = best[i - 1]
            if b.zxid < a.zxid or (b.kind == "w" and b.zxid == a.zxid and a is not b):
                bad.append(f"{b} misses {a}, which completed before it began")
    return bad


def checker_rejects_what_it_must(_binary, _work, _args):
    w = lambda v, z, i, c: Op("w", "/k", v, z, i, c)  # noqa: E731
    r = lambda v, z, i, c: Op("r", "/k", v, z, i, c)  # noqa: E731
    good = [w("a", 1, 0, 1), w("b", 2, 2, 3), r("a", 1, 1.5, 4), r("b", 2, 3.5, 5),
            w("c", None, 6, None), r("c", 3, 7, 8), r("b", 2, 6.5, 7.5)]
    case("checker: a linearizable history passes", check(good) == [], str(check(good)))
    histories = {
        "a stale read": [w("a", 1, 0, 1), w("b", 2, 2, 3), r("a", 1, 4, 5)],
        "a read going back in time": [w("a", 1, 0, 1), w("b", 2, 1, 2), r("b", 2, 2.5, 3),
                                      r("a", 1, 3.5, 4)],
        "a read from the future": [w("a", 1, 0, 1), r("b", 2, 2, 3), w("b", 2, 4, 5)],
        "a value nobody wrote": [w("a", 1, 0, 1), r("z", 9, 2, 3)],
        "a read with the wrong zxid": [w("a", 1, 0, 1), r("a", 2, 2, 3)],
        "writes out of real-time order": [w("a", 2, 0, 1), w("b", 1, 2, 3)],
    }
    for name, h in histories.items():
        case(f"checker: {name} is rejected", check(h) != [])


# ---- the cluster ------------------------------------------------------------------------

def sh(*cmd, check_rc=True):
    return subprocess.run(cmd, check=check_rc, capture_output=True)


class Net:
    """Three network namespaces on a bridge; server i is 10.198.X.i, the root namespace .254."""

    def __init__(self):
        self.tag = f"pdn{os.getpid() % 100000}"
        self.br = f"br{self.tag}"
        self.prefix = f"10.198.{os.getpid() % 200 + 20}"
        self.cut = set()

    def ip(self, i):
        return f"{self.prefix}.{i}"

    def up(self):
        sh("ip", "link", "add", self.br, "type", "bridge")
        sh("ip", "addr", "add", f"{self.prefix}.254/24", "dev", self.br)
        sh("ip", "link", "set", self.br, "up")
        for i in (1, 2, 3):
            ns = f"{self.tag}{i}"
            sh("ip", "netns", "add", ns)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("ip", "link", "add", f"v{self.tag}{i}", "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            sh("ip", "link", "set", f"v{self.tag}{i}", "master", self.br)
            sh("ip", "link", "set", f"v{self.tag}{i}", "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.ip(i)}/24", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")

    def down(self):
        for i in (1, 2, 3):
            sh("ip", "netns", "del", f"{self.tag}{i}", check_rc=False)
            sh("ip", "link", "del", f"v{self.tag}{i}", check_rc=False)
        sh("ip", "link", "del", self.br, check_rc=False)

    def isolate(self, i):
        """Server i can no longer reach the other servers (nor they it); clients still can."""
        for j in (1, 2, 3):
            if j != i:
                sh("ip", "netns", "exec", f"{self.tag}{i}", "ip", "route", "add", "blackhole",
                   f"{self.ip(j)}/32")
        self.cut.add(i)

    def heal(self):
        for i in list(self.cut):
            for j in (1, 2, 3):
                if j != i:
                    sh("ip", "netns", "exec", f"{self.tag}{i}", "ip", "route", "del",
                       "blackhole", f"{self.ip(j)}/32", check_rc=False)
        self.cut.clear()


class Cluster:
    def __init__(self, binary, work, net, extra):
        self.binary, self.net, self.work, self.extra = binary, net, work, extra
        self.procs = {}

    def start(self, i):
        d = os.path.join(self.work, f"s{i}")
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        with open(os.path.join(d, "data", "myid"), "w") as f:
            f.write(f"{i}\n")
        lines = ["tickTime=200", "initLimit=10", "syncLimit=5", f"dataDir={d}/data",
                 "clientPort=2181", f"clientPortAddress={self.net.ip(i)}",
                 "4lw.commands.whitelist=*"] + self.extra
        lines += [f"server.{j}={self.net.ip(j)}:2888:3888" for j in (1, 2, 3)]
        with open(os.path.join(d, "zoo.cfg"), "w") as f:
            f.write("\n".join(lines) + "\n")
        log = open(os.path.join(d, "log"), "ab")
        self.procs[i] = subprocess.Popen(
            ["ip", "netns", "exec", f"{self.net.tag}{i}", self.binary, "server",
             os.path.join(d, "zoo.cfg")], stdout=log, stderr=subprocess.STDOUT)

    def kill(self, i):
        p = self.procs.pop(i, None)
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def stop(self):
        for i in list(self.procs):
            self.kill(i)

    def mode(self, i):
        import socket
        try:
            with socket.create_connection((self.net.ip(i), 2181), 0.5) as s:
                s.sendall(b"srvr")
                s.settimeout(0.5)
                out = b""
                while chunk := s.recv(4096):
                    out += chunk
        except OSError:
            return None
        for line in out.decode(errors="replace").splitlines():
            if line.startswith("Mode: "):
                return line[6:]
        return None

    def leader(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            modes = {i: self.mode(i) for i in (1, 2, 3)}
            leaders = [i for i, m in modes.items() if m == "leader"]
            if len(leaders) == 1 and sum(m in ("leader", "follower") for m in modes.values()) >= 2:
                return leaders[0]
            time.sleep(0.1)
        return None


# ---- the run ----------------------------------------------------------------------------

def client(hosts):
    # Each call is tried once: a retry would hide an unknown outcome behind a known one.
    k = KazooClient(hosts, timeout=4, connection_retry=KazooRetry(max_tries=-1, delay=0.05,
                                                                    max_delay=0.2))
    k.start(30)
    return k


def record(seconds, cluster, net, seed):
    """Runs the workload and the nemesis; returns (history, nemesis actions, counts)."""
    rnd = random.Random(seed)
    everyone = ",".join(f"{net.ip(i)}:2181" for i in (1, 2, 3))
    setup = client(everyone)
    history, lock = [], threading.Lock()
    t0 = time.monotonic()
    now = lambda: time.monotonic() - t0  # noqa: E731
    for key in KEYS:
        inv = now()
        setup.ensure_path("/nem")
        st = setup.create(key, b"init")
        history.append(Op("w", key, "init", setup.exists(key).mzxid, inv, now()))
        del st
    setup.stop()
    setup.close()
    stop = threading.Event()
    counts = {"reads": 0, "writes": 0, "unknown": 0}

    def writer(n):
        k = client(everyone)
        i = 0
        while not stop.is_set():
            key, value = rnd.choice(KEYS), f"w{n}-{i}"
            i += 1
            inv = now()
            try:
                st = k.set(key, value.encode())
                op = Op("w", key, value, st.mzxid, inv, now())
                counts["writes"] += 1
            except Exception:  # noqa: BLE001 - the outcome is unknown
                op = Op("w", key, value, None, inv, None)
                counts["unknown"] += 1
                time.sleep(0.05)
            with lock:
                history.append(op)
        k.stop()
        k.close()

    def reader(i):
        k = client(f"{net.ip(i)}:2181")
        while not stop.is_set():
            key = rnd.choice(KEYS)
            inv = now()
            try:
                data, st = k.get(key)
            except Exception:  # noqa: BLE001 - a read that failed says nothing
                time.sleep(0.05)
                continue
            with lock:
                history.append(Op("r", key, data.decode(), st.mzxid, inv, now()))
                counts["reads"] += 1
        k.stop()
        k.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in (1, 2, 3)]
    for t in threads:
        t.start()
    actions = []
    end = time.time() + seconds
    step = 0
    while time.time() < end:
        leader = cluster.leader()
        if leader is None:
            actions.append("no leader")
            break
        kind = step % 3
        step += 1
        if kind == 0:
            net.isolate(leader)
            actions.append(f"cut leader {leader}")
        elif kind == 1:
            victim = rnd.choice([i for i in (1, 2, 3) if i != leader])
            net.isolate(victim)
            actions.append(f"cut follower {victim}")
        else:
            cluster.kill(leader)
            actions.append(f"kill leader {leader}")
            time.sleep(rnd.uniform(1.0, 2.0))
            cluster.start(leader)
        time.sleep(rnd.uniform(1.5, 3.0))
        net.heal()
        time.sleep(rnd.uniform(1.0, 2.0))
    stop.set()
    for t in threads:
        t.join(60)
    return history, actions, counts


def run_mode(binary, work, on, seconds, seed):
    net = Net()
    cluster = Cluster(binary, os.path.join(work, "on" if on else "off"), net,
                      ["linearizableReads=true"] if on else [])
    try:
        net.up()
        for i in (1, 2, 3):
            cluster.start(i)
        if cluster.leader(30) is None:
            return None, [], {}
        return record(seconds, cluster, net, seed)
    finally:
        cluster.stop()
        net.down()


def nemesis(binary, work, args):
    if os.geteuid() != 0:
        case("nemesis: runs as root (network namespaces)", False)
        return
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"     seed {seed}")
    for on in (True, False):
        label = "linearizableReads " + ("on" if on else "off")
        history, actions, counts = run_mode(binary, work, on, args.seconds, seed)
        if history is None:
            case(f"{label}: the ensemble elects a leader", False)
            continue
        bad = check(history)
        print(f"     {label}: {counts}, nemesis: {', '.join(actions)}; "
              f"{len(bad)} violations")
        for b in bad[:5]:
            print(f"       {b}")
        kinds = {a.split(" ")[0] + " " + a.split(" ")[1] for a in actions if " " in a}
        case(f"{label}: the nemesis cut and killed", {"cut leader", "cut follower",
                                                       "kill leader"} <= kinds, str(actions))
        case(f"{label}: reads and writes went on", counts.get("reads", 0) > 100
             and counts.get("writes", 0) > 50, str(counts))
        if on:
            case(f"{label}: the history is linearizable (no client sync)", not bad,
                 "; ".join(bad[:3]))


def add_args(ap):
    ap.add_argument("--seconds", type=float, default=18)
    ap.add_argument("--seed", type=int)


if __name__ == "__main__":
    raise SystemExit(main("nemesis", [checker_rejects_what_it_must, nemesis], add_args))
