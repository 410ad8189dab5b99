#!/usr/bin/env python3
"""Dynamic reconfiguration (issue 18), as in ZooKeeper 3.8, through the `reconfig` operation.

Observers join and leave a running three-server ensemble:

- Server 4 starts with a zoo.cfg naming the three voters and itself as an observer. The voters
  do not take it: it serves nobody.
- As the super user, `reconfig(joining="server.4=...:observer;...")`: the answer is the new
  configuration; every server's /zookeeper/config shows it, at the reconfig's zxid; server 4
  syncs, serves as an observer and sees writes made at the leader. A watch on /zookeeper/config
  fires.
- A reconfig from a stale `fromConfig` is BADVERSION; one whose new voters have no synced
  quorum is NEWCONFIGNOQUORUM; without the super user, NOAUTH.
- A voter restarted on its old zoo.cfg keeps the new configuration (it is in its data, and
  the others tell it).
- `reconfig(leaving="4")`: server 4 is dropped; writes made afterwards never reach it.

The voters change, under a write load (a client on servers 1-3 creating sequential nodes):
- servers 4 and 5 start with a zoo.cfg naming all five as voters; `reconfig(joining=server.4,
  server.5 as participants)` makes them followers of a five-voter ensemble;
- the leader is killed: the other four elect a leader (three of five), and the killed server,
  restarted on the zoo.cfg the reconfig rewrote (its dynamicConfigFile now names
  zoo.cfg.dynamic.<version> with the five), rejoins as a follower;
- `reconfig(leaving=<the leader>,<one more>)` shrinks it to three voters: the leader hands
  over to one of them, the two removed servers serve nobody;
- every write acknowledged to the load client is there, on every remaining voter.

A one-server ensemble (`standaloneEnabled=false`) grows to three: server 2 joins as an observer,
then becomes a voter; server 3 joins as a voter at once (two of three are in sync). Last, a
reconfig moves server 3's client port: it serves on the new one and the old one closes.

  tests/protocol/reconfig.py [--bin target/release/paddock] [--keep]
"""

import os
import signal
import subprocess
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NewConfigNoQuorumError, NoAuthError

from common import case, failures, free_port, main, word

SUPER = "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU="
HOSTS = {1: "127.0.0.1", 2: "127.0.0.2", 3: "127.0.0.3", 4: "127.0.0.4", 5: "127.0.0.5"}


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

    def start(self, members, observers=(4,), dynamic=False, extra=()):
        """Writes a zoo.cfg (with `dynamic`, the server lines in a dynamicConfigFile of
        version 100000000, as ZooKeeper names them) and starts the server on it."""
        lines = ["tickTime=200", "initLimit=10", "syncLimit=5",
                 f"dataDir={self.dir}/data", "reconfigEnabled=true",
                 "4lw.commands.whitelist=*", *extra]
        servers = [self.line(s, s in observers) for s in members]
        if dynamic:
            dyn = os.path.join(self.dir, "zoo.cfg.dynamic.100000000")
            with open(dyn, "w") as f:
                f.write("\n".join(servers) + "\n")
            lines.append(f"dynamicConfigFile={dyn}")
        else:
            lines += servers
        if self.sid in observers:
            lines.append("peerType=observer")
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.restart()

    @property
    def cfg(self):
        return os.path.join(self.dir, "zoo.cfg")

    def restart(self):
        """Starts the server on the zoo.cfg it has (as the last run left it)."""
        log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "server", SUPER, self.cfg], stdout=log,
                                     stderr=subprocess.STDOUT)

    def dynamic_file(self):
        """The file zoo.cfg's dynamicConfigFile names, and its text."""
        with open(self.cfg) as f:
            for line in f:
                if line.startswith("dynamicConfigFile="):
                    path = line.split("=", 1)[1].strip()
                    with open(path) as d:
                        return path, d.read()
        return None, ""

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


def distinct_ports():
    # Distinct ports: free_port() may hand out a port it handed out before, and a server
    # whose own ports coincide cannot start.
    chosen = set()
    while len(chosen) < 3 * len(HOSTS):
        chosen.add(free_port())
    chosen = sorted(chosen)
    return {sid: tuple(chosen[3 * i:3 * i + 3]) for i, sid in enumerate(HOSTS)}


def dump_logs(servers):
    """What the servers said, for a failure seen only in CI."""
    for sid, srv in servers.items():
        path = os.path.join(srv.dir, "server.log")
        if not os.path.exists(path):
            continue
        with open(path, errors="replace") as f:
            tail = f.read().splitlines()[-25:]
        print(f"----- server {sid} (exit {srv.proc.returncode if srv.proc else None}): "
              "last lines of its log -----")
        print("\n".join(tail))


def observers(binary, work, _args):
    ports = distinct_ports()
    work = os.path.join(work, "observers")
    servers = {sid: Server(binary, work, sid, ports) for sid in (1, 2, 3, 4)}
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
        case("new voters without a synced quorum: NEWCONFIGNOQUORUM", refused(
            lambda: su.reconfig(joining=None, leaving=None, new_members=",".join(
                [servers[1].line(1), servers[1].line(2).replace("server.2", "server.7"),
                 servers[1].line(3).replace("server.3", "server.8")])),
            NewConfigNoQuorumError))
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
            dump_logs(servers)


class Load(threading.Thread):
    """Creates sequential nodes through a client of servers 1-3 until stopped; keeps the
    paths the ensemble acknowledged."""

    def __init__(self, servers):
        super().__init__(daemon=True)
        hosts = ",".join(f"{servers[s].host}:{servers[s].port}" for s in (1, 2, 3))
        self.k = KazooClient(hosts, timeout=10)
        self.k.start(20)
        self.k.ensure_path("/load")
        self.acked, self.errors, self.stop_at = [], 0, threading.Event()

    def run(self):
        while not self.stop_at.is_set():
            try:
                self.acked.append(self.k.create("/load/n-", b"x", sequence=True))
            except Exception:  # noqa: BLE001 - not acknowledged: may or may not be there
                self.errors += 1
                time.sleep(0.05)

    def finish(self):
        self.stop_at.set()
        self.join(30)
        self.k.stop()
        self.k.close()


def voters(binary, work, _args):
    ports = distinct_ports()
    work = os.path.join(work, "voters")
    servers = {sid: Server(binary, work, sid, ports) for sid in HOSTS}
    load = None
    try:
        for sid in (1, 2, 3):
            servers[sid].start([1, 2, 3], observers=(), dynamic=True)
        for sid in (4, 5):
            servers[sid].start([1, 2, 3, 4, 5], observers=())
        up = until(lambda: sorted(servers[s].mode() or "" for s in (1, 2, 3))
                   == ["follower", "follower", "leader"])
        case("three voters elect a leader", up)
        if not up:
            return
        leader = next(s for s in (1, 2, 3) if servers[s].mode() == "leader")
        su = servers[leader].client(auth_data=[("digest", "super:test")])
        load = Load(servers)
        load.start()
        time.sleep(1)

        joining = ",".join(servers[1].line(s) for s in (4, 5))
        data, _ = su.reconfig(joining=joining, leaving=None, new_members=None)
        case("reconfig adds servers 4 and 5 as voters",
             all(servers[1].line(s) in data.decode() for s in (4, 5)), data.decode())
        five = until(lambda: sorted(servers[s].mode() or "" for s in HOSTS)
                     == ["follower"] * 4 + ["leader"], 30)
        case("five voters: servers 4 and 5 follow",
             five, str({s: servers[s].mode() for s in HOSTS}))
        version = data.decode().rsplit("version=", 1)[-1].strip()
        path, text = servers[1].dynamic_file()
        case(f"zoo.cfg's dynamicConfigFile names zoo.cfg.dynamic.{version}, with five servers",
             path is not None and path.endswith(f"zoo.cfg.dynamic.{version}")
             and all(servers[1].line(s) in text for s in HOSTS) and "version" not in text,
             f"{path}: {text}")
        def known(sid):
            try:
                with open(os.path.join(servers[sid].dir, "data", "committedConfig")) as f:
                    return f.read()
            except OSError:
                return ""
        case("every server records it in its data directory (committedConfig)", until(
            lambda: all(f"version={version}" in known(s) for s in HOSTS), 10),
            str({s: known(s)[-20:] for s in HOSTS}))
        case("mntr on the leader counts four synced followers", until(
            lambda: "zk_synced_followers\t4" in word(servers[leader].host,
                                                       servers[leader].port, "mntr"), 10))
        su.stop()
        su.close()

        # The leader dies; four of five elect another.
        servers[leader].proc.kill()
        servers[leader].proc.wait()
        rest = [s for s in HOSTS if s != leader]
        new = until(lambda: sorted(servers[s].mode() or "" for s in rest)
                    == ["follower"] * 3 + ["leader"], 30)
        case("leader killed: the other four elect a leader",
             new, str({s: servers[s].mode() for s in rest}))
        # It restarts on the zoo.cfg the reconfig rewrote (five servers).
        servers[leader].restart()
        case(f"server {leader}, restarted, follows the five", until(
            lambda: servers[leader].mode() == "follower", 30), str(servers[leader].mode()))
        if not new:
            return
        leader2 = next(s for s in rest if servers[s].mode() == "leader")

        # Shrink to three voters, removing the leader itself and one more.
        gone = [leader2, next(s for s in HOSTS if s not in (leader2, leader))]
        kept = [s for s in HOSTS if s not in gone]
        su = servers[kept[0]].client(auth_data=[("digest", "super:test")])
        data, stat = su.reconfig(joining=None, leaving=",".join(map(str, gone)),
                                 new_members=None)
        case(f"reconfig removes servers {gone} (one of them the leader)",
             all(f"server.{s}=" not in data.decode() for s in gone), data.decode())
        three = until(lambda: sorted(servers[s].mode() or "" for s in kept)
                      == ["follower", "follower", "leader"], 30)
        case("three voters again, led by one of them",
             three, str({s: servers[s].mode() for s in HOSTS}))
        case("the removed servers serve nobody", until(
            lambda: all(servers[s].mode() not in ("leader", "follower", "observer")
                        for s in gone), 20), str({s: servers[s].mode() for s in gone}))
        time.sleep(1)
        load.finish()
        case("the load kept being acknowledged", len(load.acked) > 20,
             f"{len(load.acked)} acknowledged, {load.errors} errors")
        for s in kept:
            k = servers[s].client()
            k.sync("/")
            have = set(k.get_children("/load"))
            lost = [p for p in load.acked if p.rsplit("/", 1)[1] not in have]
            case(f"server {s} holds every acknowledged write ({len(load.acked)})",
                 not lost, f"lost: {lost[:5]}")
            case(f"server {s} shows the configuration of the reconfig",
                 k.get("/zookeeper/config")[0] == data)
            k.stop()
            k.close()
        su.stop()
        su.close()
    finally:
        if load is not None and load.is_alive():
            load.stop_at.set()
        for s in servers.values():
            s.stop()
        if failures:
            dump_logs(servers)


def grow_from_one(binary, work, _args):
    ports = distinct_ports()
    work = os.path.join(work, "grow")
    servers = {sid: Server(binary, work, sid, ports) for sid in (1, 2, 3)}
    alone = ["standaloneEnabled=false"]
    try:
        servers[1].start([1], observers=(), extra=alone)
        case("one server with standaloneEnabled=false leads itself",
             until(lambda: servers[1].mode() == "leader"), str(servers[1].mode()))
        servers[2].start([1, 2], observers=(2,), extra=alone)
        servers[3].start([1, 2, 3], observers=(), extra=alone)
        su = servers[1].client(auth_data=[("digest", "super:test")])
        su.create("/before", b"written by one server")
        su.reconfig(joining=servers[1].line(2, observer=True), leaving=None, new_members=None)
        case("server 2 joins as an observer", until(lambda: servers[2].mode() == "observer"),
             str(servers[2].mode()))
        su.reconfig(joining=servers[1].line(2), leaving=None, new_members=None)
        case("server 2 becomes a voter", until(
            lambda: sorted(servers[s].mode() or "" for s in (1, 2)) == ["follower", "leader"]),
            str({s: servers[s].mode() for s in (1, 2)}))
        data, _ = su.reconfig(joining=servers[1].line(3), leaving=None, new_members=None)
        case("server 3 joins as a voter at once", until(
            lambda: sorted(servers[s].mode() or "" for s in (1, 2, 3))
            == ["follower", "follower", "leader"]), str({s: servers[s].mode() for s in (1, 2, 3)}))
        at3 = servers[3].client()
        at3.sync("/")
        case("server 3 serves what server 1 wrote alone", at3.get("/before")[0]
             == b"written by one server")
        case("server 3 shows the three-server configuration",
             at3.get("/zookeeper/config")[0] == data, at3.get("/zookeeper/config")[0].decode())
        at3.stop()
        at3.close()

        # A reconfig moves server 3's client port: it listens on the new one, not the old.
        old = servers[3].port
        new = free_port()
        moved = servers[1].line(3).replace(f";{servers[3].host}:{old}",
                                           f";{servers[3].host}:{new}")
        data, _ = su.reconfig(joining=moved, leaving=None, new_members=None)
        servers[3].port = new
        case("a reconfig moves server 3's client port",
             until(lambda: servers[3].mode() == "follower", 10) and moved in data.decode(),
             f"{servers[3].mode()} / {data.decode()}")
        servers[3].port = old
        case("the old client port is closed", until(lambda: servers[3].mode() is None, 10))
        servers[3].port = new
        k = servers[3].client()
        case("a client on the new port reads", k.get("/before")[0] == b"written by one server")
        for c in (k, su):
            c.stop()
            c.close()
    finally:
        for s in servers.values():
            s.stop()
        if failures:
            dump_logs(servers)


if __name__ == "__main__":
    raise SystemExit(main("reconfig", [observers, voters, grow_from_one]))
