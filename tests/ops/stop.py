#!/usr/bin/env python3
"""Stopping a server with SIGTERM: it reads no new requests, answers those in flight, closes its
client connections, and exits 0; sessions survive, so clients resume them elsewhere.

- Standalone, under a pipelined write load: every request the server read is answered (its log
  says none was left unanswered), the rest fail on the client with CONNECTIONLOSS; after a
  restart the client resumes the same session.
- A rolling restart of a three-server ensemble under load from clients of every server: each
  server in turn, the leader last, is stopped with SIGTERM and restarted; the leader hands
  over before it exits. Clients of the other servers see no failed request and no
  disconnection; clients of the stopped server are disconnected once and resume their
  sessions on another server; no session expires; every acknowledged write is there at the
  end.
- Planned leadership transfers under the same load: `paddock admin transfer-leadership --to N`
  and the `rqld` four-letter word on a follower: a new leader without an election, and no
  client of any server sees a disconnection or a failed request.

  tests/ops/stop.py [--bin target/release/paddock] [--keep]
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "tests", "security"))
from check import case, failures, free_port  # noqa: E402
from quorum import HOSTS, Ensemble  # noqa: E402


def standalone(binary, work):
    port = free_port()
    data = os.path.join(work, "standalone")
    log_path = os.path.join(work, "standalone.log")

    def start():
        return subprocess.Popen(
            [binary, "server", f"-Dzookeeper.clientPort={port}", f"-Dzookeeper.dataDir={data}",
             "-Dzookeeper.admin.enableServer=false"],
            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)

    p = start()
    k = KazooClient(f"127.0.0.1:{port}", timeout=10,
                    connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.2})
    try:
        k.start(15)
        sid = k.client_id[0]
        k.ensure_path("/g")
        pending = [k.set_async("/g", str(i).encode()) for i in range(3000)]
        p.send_signal(signal.SIGTERM)
        ok = lost = other = 0
        for r in pending:
            try:
                r.get(15)
                ok += 1
            except ConnectionLoss:
                lost += 1
            except Exception:  # noqa: BLE001
                other += 1
        code = p.wait(15)
        text = open(log_path).read()
        m = re.search(r"client connections closed unanswered=(\d+)", text)
        case("SIGTERM: no request the server read is left unanswered, exit status 0",
             m is not None and m.group(1) == "0" and code == 0 and other == 0,
             f"exit {code}, answered {ok}, lost {lost}, other {other}, {text[-400:]}")
        p = start()
        deadline = time.time() + 15
        while time.time() < deadline and k.state != KazooState.CONNECTED:
            time.sleep(0.05)
        last = int(k.get("/g")[0]) if k.state == KazooState.CONNECTED else None
        case("after a restart the client resumes the same session, every answered write there",
             k.state == KazooState.CONNECTED and k.client_id[0] == sid and last is not None
             and last == ok - 1, f"{k.state} {k.client_id[0]:x} vs {sid:x}, /g={last}, ok={ok}")
    finally:
        k.stop()
        p.send_signal(signal.SIGTERM)
        p.wait(15)


class Writer(threading.Thread):
    """One client writing its own counter as fast as answers come, recording what it saw."""

    def __init__(self, hosts, name):
        super().__init__(daemon=True)
        self.name_ = name
        self.k = KazooClient(hosts, timeout=6,
                             connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.2},
                             command_retry={"max_tries": 0})
        self.states = []
        self.k.add_listener(lambda s: self.states.append(s))
        self.k.start(15)
        self.sid = self.k.client_id[0]
        self.k.ensure_path(f"/w/{name}")
        self.acked = 0
        self.failed = 0
        self.stop_flag = threading.Event()

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            try:
                self.k.set(f"/w/{self.name_}", str(i).encode())
                self.acked = i
            except Exception:  # noqa: BLE001
                self.failed += 1
                time.sleep(0.05)

    def server(self):
        return self.k._connection._socket.getpeername()[0] if self.k._connection._socket else None


class Pipeliner(threading.Thread):
    """One client on one server creating sequential znodes 100 at a time (pipelined), recording
    every path it was told it created: through a transfer, each must exist exactly once."""

    def __init__(self, host, name):
        super().__init__(daemon=True)
        self.name_ = name
        self.k = KazooClient(host, timeout=6, command_retry={"max_tries": 0},
                             connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.2})
        self.states = []
        self.k.add_listener(lambda s: self.states.append(s))
        self.k.start(15)
        self.k.ensure_path("/seq")
        self.created = []
        self.failed = []
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            batch = [self.k.create_async(f"/seq/{self.name_}-", b"x", sequence=True)
                     for _ in range(100)]
            for r in batch:
                try:
                    self.created.append(r.get(15))
                except Exception as e:  # noqa: BLE001
                    self.failed.append(repr(e))


SUPER_PW = "stop-test-pw"
SUPER_DIGEST = "super:" + base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PW}".encode()).digest()).decode()


def four(m, word):
    import socket
    with socket.create_connection((m.host, m.client_port), 2) as s:
        s.sendall(word.encode())
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return out.decode()


def rolling(binary, work):
    ens = Ensemble(binary, work, "ens")
    writers = []
    admin = free_port()
    extra = lambda m: [f"admin.serverAddress={m.host}", f"admin.serverPort={admin}",  # noqa: E731
                       f"DigestAuthenticationProvider.superDigest={SUPER_DIGEST}",
                       "4lw.commands.whitelist=*"]
    try:
        for m in ens.members.values():
            m.start(extra(m))
        modes = ens.wait_serving(list(HOSTS))
        case("the ensemble serves", sorted(map(str, modes.values())) == ["follower", "follower", "leader"],
             f"{modes}")
        leader = next(s for s, mode in modes.items() if mode == "leader")
        followers = [s for s in HOSTS if s != leader]
        r = subprocess.run([binary, "admin", "members", "-server", f"{HOSTS[leader]}:{admin}"],
                           capture_output=True, text=True, timeout=30)
        try:
            members = {m["id"]: m for m in json.loads(r.stdout)["members"]}
        except (ValueError, KeyError):
            members = {}
        case("the leader's members command: every member's role, zxid, lag and last contact",
             sorted(m.get("role") for m in members.values()) == ["follower", "follower", "leader"]
             and all("zxid" in m and "lag" in m and "last_contact_ms" in m
                     for m in members.values()), r.stdout[-600:] + r.stderr)
        # One client pinned to each server first (so each has clients), able to move to the
        # others when its server stops.
        for sid in HOSTS:
            m = ens.members[sid]
            others = [ens.members[o] for o in HOSTS if o != sid]
            hosts = ",".join([f"{m.host}:{m.client_port}"] + [f"{o.host}:{o.client_port}" for o in others])
            w = Writer(hosts, f"c{sid}")
            writers.append((sid, w))
        # kazoo shuffles hosts; record where each one is.
        homes = {w.name_: w.server() for _, w in writers}
        for _, w in writers:
            w.start()
        time.sleep(1)
        # Every server in turn, the leader last: SIGTERM on it hands leadership over first.
        for f in followers + [leader]:
            m = ens.members[f]
            if f == leader:
                # By now the movers may all sit on the leader: a client pinned to each other
                # server watches the handover from there.
                for o in followers:
                    om = ens.members[o]
                    w = Writer(f"{om.host}:{om.client_port}", f"p{o}")
                    writers.append((o, w))
                    homes[w.name_] = w.server()
                    w.start()
                time.sleep(1)
            before = {w.name_: (len(w.states), w.failed) for _, w in writers}
            m.stop()
            code = m.proc.returncode
            text = m.last_start()
            left = re.search(r"client connections closed unanswered=(\d+)", text)
            flight = re.search(r"answering those in flight connections=(\d+) in_flight=(\d+)", text)
            if flight:
                print(f"     server {f}: {flight.group(2)} requests in flight on "
                      f"{flight.group(1)} connections at SIGTERM")
            case(f"server {f} stops on SIGTERM with nothing unanswered (exit {code})",
                 code == 0 and left is not None and left.group(1) == "0", text[-300:])
            if f == leader:
                case("SIGTERM on the leader hands over before it exits", "handed over" in text,
                     text[-500:])
            m.start(extra(m))
            ens.wait_serving(list(HOSTS))
            time.sleep(1)
            for _, w in writers:
                states = w.states[before[w.name_][0]:]
                failed = w.failed - before[w.name_][1]
                if homes[w.name_] == m.host:
                    case(f"{w.name_} (on the stopped server {f}) is disconnected once and resumes "
                         "its session elsewhere",
                         states.count(KazooState.SUSPENDED) <= 1 and KazooState.LOST not in states
                         and w.k.client_id[0] == w.sid, f"{states} failed={failed}")
                    homes[w.name_] = w.server()
                else:
                    case(f"{w.name_} (on {homes[w.name_]}) sees no disconnection and no failure "
                         f"while {f} restarts", not states and failed == 0, f"{states} failed={failed}")
        # Planned transfers under the same load: nobody notices. Pipelined creates from a
        # client on each server as well: none lost, none made twice.
        modes = ens.wait_serving(list(HOSTS))
        pipes = []
        for sid in HOSTS:
            m = ens.members[sid]
            pipes.append(Pipeliner(f"{m.host}:{m.client_port}", f"s{sid}"))
        for p in pipes:
            p.states.clear()
            p.start()
        time.sleep(0.5)
        leader = next(s for s, mode in modes.items() if mode == "leader")
        target = next(s for s in HOSTS if s != leader)
        before = {w.name_: (len(w.states), w.failed) for _, w in writers}
        r = subprocess.run(
            [binary, "admin", "transfer-leadership", "--to", str(target), "-server",
             f"{HOSTS[leader]}:{admin}", "--digest", f"super:{SUPER_PW}"],
            capture_output=True, text=True, timeout=30)
        modes = ens.wait_serving(list(HOSTS))
        case(f"paddock admin transfer-leadership --to {target}: server {target} leads",
             r.returncode == 0 and f"leader is now server {target}" in r.stderr
             and modes.get(target) == "leader", f"{r.stdout} {r.stderr} {modes}")
        roles = [line for line in ens.members[target].last_start().splitlines()
                 if "ensemble role changed" in line]
        case("the new leader went from following to leading, without looking (no election)",
             len(roles) >= 2 and "role=Leading" in roles[-1] and "role=Following" in roles[-2]
             and "handed over" in ens.members[leader].last_start(), "\n".join(roles[-3:]))
        asker = next(s for s in HOSTS if s != target)
        said = four(ens.members[asker], "rqld")
        time.sleep(0.5)
        modes = ens.wait_serving(list(HOSTS))
        case(f"rqld on server {asker}: it leads", "Asked the leader" in said
             and modes.get(asker) == "leader", f"{said} {modes}")
        time.sleep(1)
        for p in pipes:
            p.stop_flag.set()
        for p in pipes:
            p.join(30)
        children = set(pipes[0].k.get_children("/seq"))
        for p in pipes:
            mine = {c for c in children if c.startswith(p.name_ + "-")}
            told = [c.rsplit("/", 1)[1] for c in p.created]
            case(f"{p.name_}: {len(told)} pipelined creates through two transfers, each there "
                 "exactly once, none failed, no disconnection",
                 len(told) > 200 and set(told) == mine and len(told) == len(mine)
                 and not p.failed and not p.states,
                 f"told {len(told)}, there {len(mine)}, extra {sorted(mine - set(told))[:5]}, "
                 f"missing {sorted(set(told) - mine)[:5]}, failed {p.failed[:3]}, {p.states}")
            p.k.stop()
        for _, w in writers:
            states = w.states[before[w.name_][0]:]
            failed = w.failed - before[w.name_][1]
            case(f"{w.name_}: no disconnection and no failed request through two transfers",
                 not states and failed == 0 and w.k.client_id[0] == w.sid,
                 f"{states} failed={failed}")
        for _, w in writers:
            w.stop_flag.set()
        for _, w in writers:
            w.join(10)
        k = KazooClient(ens.hosts(), timeout=10)
        k.start(15)
        for _, w in writers:
            v = int(k.get(f"/w/{w.name_}")[0])
            case(f"{w.name_}: every acknowledged write is there, no session expired",
                 v >= w.acked and KazooState.LOST not in w.states, f"{v} < {w.acked}")
        k.stop()
    finally:
        for _, w in writers:
            w.stop_flag.set()
            try:
                w.k.stop()
            except Exception:  # noqa: BLE001
                pass
        if failures:
            # What the servers did about roles and clients, for the CI log.
            pick = re.compile(r"role changed|handover|dropping clients|became an election|"
                              r"stopping|serving again|not serving")
            for sid, m in ens.members.items():
                lines = [ln for ln in open(m.log, errors="replace").read().splitlines()
                         if pick.search(ln)]
                print(f"--- server {sid}:\n" + "\n".join(lines[-40:]))
        ens.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(repo, "target", "release", "paddock"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    if not os.path.exists(binary):
        print(f"FAIL {binary} is missing (cargo build --release)")
        return 1
    work = tempfile.mkdtemp(prefix="paddock-stop-")
    try:
        standalone(binary, work)
        rolling(binary, work)
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"stop: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
