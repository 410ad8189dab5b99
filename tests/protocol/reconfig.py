#!/usr/bin/env python3
"""Dynamic reconfiguration (issue 18, in progress): observers join and leave a running
three-server ensemble through the `reconfig` operation, as in ZooKeeper 3.8.

- Server 4 starts with a zoo.cfg naming the three voters and itself as an observer. The voters
  do not take it: it serves nobody.
- As the super user, `reconfig(joining="server.4=...:observer;...")`: the answer is the new
  configuration; every server's /zookeeper/config shows it, at the reconfig's zxid; server 4
  syncs, serves as an observer and sees writes made at the leader. A watch on /zookeeper/config
  fires.
- A reconfig from a stale `fromConfig` is BADVERSION; one changing the voters is refused
  (UNIMPLEMENTED: not built yet); without the super user, NOAUTH.
- A voter restarted keeps the new configuration (it is in its data, not in its zoo.cfg).
- `reconfig(leaving="4")`: server 4 is dropped; writes made afterwards never reach it.

  tests/protocol/reconfig.py [--bin target/release/paddock] [--keep]
"""

import os
import signal
import subprocess
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoAuthError, UnimplementedError

from common import case, failures, free_port, main, word

SUPER = "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU="
HOSTS = {1: "127.0.0.1", 2: "127.0.0.2", 3: "127.0.0.3", 4: "127.0.0.4"}


class Server:
    def __init__(self, binary, work, sid, ports):
        self.binary, self.sid, self.ports = binary, sid, ports
        self.host = HOSTS[sid]
        self.port = ports[sid][0]
        self.dir = os.path.join(work, f"s{sid}")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        with open(os.path.join(self.dir, "data", "myid"), "w") as f:
            f.write(f"{sid}\n")
        self.proc = None

    def line(self, sid, observer=False):
        _, q, e = self.ports[sid]
        role = "observer" if observer else "participant"
        return f"server.{sid}={HOSTS[sid]}:{q}:{e}:{role};{HOSTS[sid]}:{self.ports[sid][0]}"

    def start(self, members):
        lines = ["tickTime=200", "initLimit=10", "syncLimit=5",
                 f"dataDir={self.dir}/data", "reconfigEnabled=true",
                 "4lw.commands.whitelist=*"]
        lines += [self.line(s, s == 4) for s in members]
        if self.sid == 4:
            lines.append("peerType=observer")
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "server", SUPER, cfg], stdout=log,
                                     stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def mode(self):
        for line in word(self.host, self.port, "srvr", timeout=1).splitlines():
            if line.startswith("Mode: "):
                return line[6:].strip()
        return None

    def client(self, **kw):
        k = KazooClient(f"{self.host}:{self.port}", timeout=10, **kw)
        k.start(20)
        return k


def until(cond, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def observers(binary, work, _args):
    # Twelve distinct ports: free_port() may hand out a port it handed out before, and a
    # server whose own ports coincide cannot start.
    chosen = set()
    while len(chosen) < 3 * len(HOSTS):
        chosen.add(free_port())
    chosen = sorted(chosen)
    ports = {sid: tuple(chosen[3 * i:3 * i + 3]) for i, sid in enumerate(HOSTS)}
    servers = {sid: Server(binary, work, sid, ports) for sid in HOSTS}
    try:
        for sid in (1, 2, 3):
            servers[sid].start([1, 2, 3])
        servers[4].start([1, 2, 3, 4])
        voters_up = until(lambda: sorted(servers[s].mode() or "" for s in (1, 2, 3))
                          == ["follower", "follower", "leader"])
        case("three voters elect a leader", voters_up)
        running = until(lambda: servers[4].proc.poll() is None
                        and word(servers[4].host, servers[4].port, "srvr", timeout=1) != "")
        case("server 4 runs and answers srvr", running)
        if not (voters_up and running):
            return
        leader = next(s for s in (1, 2, 3) if servers[s].mode() == "leader")
        time.sleep(1)
        case("server 4, not in the voters' configuration, serves nobody",
             servers[4].proc.poll() is None
             and servers[4].mode() not in ("observer", "follower"), str(servers[4].mode()))

        su = servers[leader].client(auth_data=[("digest", "super:test")])
        plain = servers[1].client()
        before, _ = plain.get("/zookeeper/config")
        fired = threading.Event()
        plain.get("/zookeeper/config", watch=lambda _e: fired.set())
        joining = servers[1].line(4, observer=True)
        data, stat = su.reconfig(joining=joining, leaving=None, new_members=None)
        text = data.decode()
        case("reconfig answers with the new configuration, server 4 an observer",
             joining in text and text.endswith(f"version={stat.mzxid:x}"), text)
        case("a watch on /zookeeper/config fires", fired.wait(10))
        for sid in (1, 2, 3):
            got = until(lambda: servers[sid].client().get("/zookeeper/config")[0] == data, 10)
            case(f"server {sid} shows it", got)
        case("server 4 joins as an observer", until(lambda: servers[4].mode() == "observer"),
             str(servers[4].mode()))
        su.create("/joined", b"after the reconfig")
        at4 = servers[4].client()
        at4.sync("/")
        case("server 4 serves what the leader wrote", at4.exists("/joined") is not None)
        case("server 4 shows the configuration", at4.get("/zookeeper/config")[0] == data)

        def refused(call, exc):
            try:
                call()
                return False
            except exc:
                return True
        case("a stale fromConfig is BADVERSION", refused(
            lambda: su.reconfig(joining=None, leaving="4", new_members=None,
                                from_config=int.from_bytes(b"\x01", "big")), BadVersionError))
        case("changing the voters is refused (not built yet)", refused(
            lambda: su.reconfig(joining=None, leaving="3", new_members=None),
            UnimplementedError))
        case("without the super user, NOAUTH", refused(
            lambda: plain.reconfig(joining=None, leaving="4", new_members=None), NoAuthError))

        # A voter restarted on the same zoo.cfg (which does not name server 4) keeps the
        # configuration its data holds.
        other = next(s for s in (1, 2, 3) if s != leader)
        servers[other].stop()
        servers[other].start([1, 2, 3])
        case(f"restarted server {other} serves again",
             until(lambda: servers[other].mode() == "follower"))
        case(f"restarted server {other} still shows server 4", until(
            lambda: servers[other].client().get("/zookeeper/config")[0] == data, 10))

        data2, _ = su.reconfig(joining=None, leaving="4", new_members=None)
        case("reconfig leaving=4 answers without server 4",
             "server.4=" not in data2.decode(), data2.decode())
        case("server 4 is dropped", until(lambda: servers[4].mode() != "observer"),
             str(servers[4].mode()))
        su.create("/left", b"after server 4 left")
        time.sleep(1)
        try:
            # Bounded: a server that no longer serves keeps its clients waiting.
            seen = at4.exists_async("/left").get(timeout=3) is not None
        except Exception:  # noqa: BLE001 - server 4 no longer serves
            seen = False
        case("writes after its removal never reach server 4", not seen)
        for k in (su, plain, at4):
            try:
                k.stop()
                k.close()
            except Exception:  # noqa: BLE001
                pass
    finally:
        for s in servers.values():
            s.stop()
        if failures:
            # What the servers said, for a failure seen only in CI.
            for sid, srv in servers.items():
                with open(os.path.join(srv.dir, "server.log"), errors="replace") as f:
                    tail = f.read().splitlines()[-25:]
                print(f"----- server {sid} (exit {srv.proc.returncode if srv.proc else None}): "
                      "last lines of its log -----")
                print("\n".join(tail))


if __name__ == "__main__":
    raise SystemExit(main("reconfig", [observers]))
