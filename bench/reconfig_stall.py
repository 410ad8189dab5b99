#!/usr/bin/env python3
"""The write stall of a 3 -> 5 reconfiguration (issue 18), Paddock and Apache ZooKeeper 3.8 in
the same run.

For each system: three voters (tickTime=2000, reconfigEnabled, skipACL), and servers 4 and 5
started with a zoo.cfg naming all five as voters (ZooKeeper takes them as non-voting followers
at once; Paddock takes them once the reconfig commits). A load of setData calls (one kazoo
client per voter, `--inflight` asynchronous calls each) runs for `--before` seconds, then
`reconfig(joining=server.4, server.5)` is sent, and the load goes on for `--after` seconds.

Reported per system, medians of `--rounds` rounds:
- writes/s before the reconfig and after it (Python clients: the load is the same for both
  systems, not either server's limit);
- the reconfig's latency (sent to answered);
- the write stall: the longest time without any acknowledged write, from the reconfig's start
  to one second after its answer.

  bench/reconfig_stall.py [--bin target/release/paddock] [--rounds 3] [--inflight 32]
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(repo, "tests", "security"))

from kazoo.client import KazooClient  # noqa: E402

from check import free_port  # noqa: E402

HOSTS = {1: "127.0.0.1", 2: "127.0.0.2", 3: "127.0.0.3", 4: "127.0.0.4", 5: "127.0.0.5"}
COMMON = ["tickTime=2000", "initLimit=10", "syncLimit=5", "reconfigEnabled=true",
          "skipACL=yes", "4lw.commands.whitelist=*"]


def word(host, port, w):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(w.encode())
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    return out.decode(errors="replace")
                out += b
    except OSError:
        return ""


def mode(host, port):
    for line in word(host, port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[6:].strip()
    return None


class Cluster:
    """Five servers of one system; 1-3 the voters, 4 and 5 waiting to be added."""

    def __init__(self, system, binary, work):
        self.system, self.binary = system, binary
        self.work = os.path.join(work, system)
        chosen = set()
        while len(chosen) < 15:
            chosen.add(free_port())
        chosen = sorted(chosen)
        self.ports = {sid: tuple(chosen[3 * i:3 * i + 3]) for i, sid in enumerate(HOSTS)}
        self.procs, self.pids = [], []
        # start-zookeeper.sh checks its server on 127.0.0.1: ZooKeeper's all listen there.
        self.hosts = HOSTS if system == "paddock" else {sid: "127.0.0.1" for sid in HOSTS}

    def line(self, sid):
        c, q, e = self.ports[sid]
        h = self.hosts[sid]
        return f"server.{sid}={h}:{q}:{e}:participant;{h}:{c}"

    def start(self):
        for sid in HOSTS:
            members = [1, 2, 3] if sid <= 3 else list(HOSTS)
            lines = COMMON + [self.line(s) for s in members]
            d = os.path.join(self.work, f"s{sid}")
            os.makedirs(os.path.join(d, "data"), exist_ok=True)
            with open(os.path.join(d, "data", "myid"), "w") as f:
                f.write(f"{sid}\n")
            if self.system == "paddock":
                cfg = os.path.join(d, "zoo.cfg")
                with open(cfg, "w") as f:
                    f.write("\n".join(lines + [f"dataDir={d}/data"]) + "\n")
                log = open(os.path.join(d, "server.log"), "ab")
                self.procs.append(subprocess.Popen([self.binary, "server", cfg], stdout=log,
                                                   stderr=subprocess.STDOUT))
            else:
                # start-zookeeper.sh waits until the server serves: 1-3 together first.
                p = subprocess.Popen(
                    [os.path.join(repo, "scripts", "start-zookeeper.sh"),
                     str(self.ports[sid][0]), os.path.join(d, "data"), *lines],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                self.procs.append(p)
        if self.system == "zookeeper":
            for p in self.procs:
                out, err = p.communicate(180)
                if p.returncode != 0:
                    raise RuntimeError(err.decode(errors="replace")[-2000:])
                self.pids.append(int(out.decode().strip()))
        deadline = time.time() + 60
        while time.time() < deadline:
            modes = sorted(mode(self.hosts[s], self.ports[s][0]) or "" for s in (1, 2, 3))
            if modes == ["follower", "follower", "leader"]:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.system}: the three voters do not serve")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.work, ignore_errors=True)


def one_round(cl, args):
    """Runs the load around one reconfig; returns the round's figures."""
    clients = []
    for sid in (1, 2, 3):
        k = KazooClient(f"{cl.hosts[sid]}:{cl.ports[sid][0]}", timeout=10)
        k.start(20)
        clients.append(k)
    clients[0].ensure_path("/stall")
    acks, lock, stop = [], threading.Lock(), threading.Event()

    def drive(k):
        def done(_result):
            with lock:
                acks.append(time.monotonic())
            if not stop.is_set():
                k.set_async("/stall", b"x").rawlink(done)
        for _ in range(args.inflight):
            k.set_async("/stall", b"x").rawlink(done)

    for k in clients:
        drive(k)
    time.sleep(args.before)
    admin = KazooClient(f"{cl.hosts[1]}:{cl.ports[1][0]}", timeout=30)
    admin.start(20)
    joining = ",".join(cl.line(s) for s in (4, 5))
    t0 = time.monotonic()
    admin.reconfig(joining=joining, leaving=None, new_members=None)
    t1 = time.monotonic()
    time.sleep(args.after)
    stop.set()
    time.sleep(0.5)
    for k in clients + [admin]:
        k.stop()
        k.close()
    with lock:
        ts = sorted(acks)
    window = [t for t in ts if t0 - 0.001 <= t <= t1 + 1.0]
    edges = [t0] + window + [t1 + 1.0]
    stall = max(b - a for a, b in zip(edges, edges[1:]))
    before = sum(1 for t in ts if t0 - args.before + 0.5 <= t < t0) / (args.before - 0.5)
    after = sum(1 for t in ts if t1 + 1.0 <= t < t1 + args.after) / (args.after - 1.0)
    joined = all(mode(cl.hosts[s], cl.ports[s][0]) == "follower" for s in (4, 5))
    return {"before": before, "after": after, "latency_ms": (t1 - t0) * 1000,
            "stall_ms": stall * 1000, "joined": joined}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(repo, "target", "release", "paddock"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=32)
    ap.add_argument("--before", type=float, default=4.0)
    ap.add_argument("--after", type=float, default=4.0)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="paddock-reconfig-stall-")
    results = {}
    try:
        for system in ("paddock", "zookeeper"):
            rounds = []
            for _ in range(args.rounds):
                cl = Cluster(system, args.bin, work)
                try:
                    cl.start()
                    rounds.append(one_round(cl, args))
                finally:
                    cl.stop()
            results[system] = rounds
            for r in rounds:
                print(f"{system}: {r}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {s: {k: statistics.median(r[k] for r in rs) for k in
               ("before", "after", "latency_ms", "stall_ms")} for s, rs in results.items()}
    print("\n| | Paddock | ZooKeeper 3.8 |\n|---|---|---|")
    names = {"before": "writes/s before", "after": "writes/s after",
             "latency_ms": "reconfig latency (ms)", "stall_ms": "write stall (ms)"}
    for k, name in names.items():
        print(f"| {name} | {med['paddock'][k]:,.1f} | {med['zookeeper'][k]:,.1f} |")
    print("| servers 4 and 5 follow after it | "
          f"{all(r['joined'] for r in results['paddock'])} | "
          f"{all(r['joined'] for r in results['zookeeper'])} |")


if __name__ == "__main__":
    main()
