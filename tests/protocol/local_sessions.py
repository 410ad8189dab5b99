#!/usr/bin/env python3
"""Local sessions (`localSessionsEnabled`, `localSessionsUpgradingEnabled`), side by side with
Apache ZooKeeper 3.8: the same steps against a three-server Paddock ensemble and a three-server
ZooKeeper ensemble, once with upgrading off and once on. Every observation is compared between
the two, and with what the step expects.

- A new session on a follower or on the leader costs no transaction, nor does its close or
  its expiry; mntr counts it in local_sessions.
- Persistent writes from a local session go through the leader as any write.
- An ephemeral create: with upgrading off, EPHEMERALONLOCALSESSION (-120) and no node (the
  refusal takes a zxid on both); with upgrading on, the session is upgraded first (a
  createSession transaction, then the create), and may then move to another server.
- A local session resumed on another server is expired; on its own server it resumes.
- A client of another server notices none of it.

  tests/protocol/local_sessions.py [--bin target/release/paddock] [--keep]
"""

import socket
import struct
import time

from kazoo.client import KazooClient, KazooState

from common import Ensemble, ZooKeeperEnsemble, case, main, word
from check import recv_exact  # noqa: E402 (tests/security, on the path common set)


class Paddock:
    label = "paddock"

    def __init__(self, binary, work, name):
        self.ens = Ensemble(binary, work, name)

    def addr(self, sid):
        m = self.ens.members[sid]
        return m.host, m.client_port

    def start(self, extra):
        for m in self.ens.members.values():
            m.start(list(extra))
        modes = self.ens.wait_serving(list(self.ens.members))
        return all(v in ("leader", "follower") for v in modes.values())

    def stop(self):
        self.ens.stop()


class ZooKeeper:
    label = "zookeeper"

    def __init__(self, work, name):
        self.ens = ZooKeeperEnsemble(work, name)

    def addr(self, sid):
        return self.ens.addr(sid)

    def start(self, extra):
        return self.ens.start(extra)

    def stop(self):
        self.ens.stop()


def srvr(system, sid):
    out = word(*system.addr(sid), "srvr")
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def mntr(system, sid, key):
    for line in word(*system.addr(sid), "mntr").splitlines():
        k, _, v = line.partition("\t")
        if k == f"zk_{key}":
            return int(v)
    return None


def handshake(addr, sid=0, pw=b"\0" * 16, timeout=10000):
    """A raw handshake: (socket, negotiated timeout, session id); a refused resume answers
    timeout 0 and session 0."""
    s = socket.create_connection(addr, 5)
    body = struct.pack(">iqiqi", 0, 0, timeout, sid, len(pw)) + pw + b"\0"
    s.sendall(struct.pack(">i", len(body)) + body)
    n = struct.unpack(">i", recv_exact(s, 4))[0]
    reply = recv_exact(s, n)
    _proto, to, rsid, plen = struct.unpack(">iiqi", reply[:20])
    return s, to, rsid, reply[20:20 + plen]


def resumes(addr, sid, pw, close=False):
    """Whether the session resumes at `addr`; with `close`, one that does is then closed
    there (a closeSession, answered)."""
    s, to, rsid, _ = handshake(addr, sid, pw)
    ok = to > 0 and rsid == sid
    if ok and close:
        s.sendall(struct.pack(">iii", 8, 1, -11))
        n = struct.unpack(">i", recv_exact(s, 4))[0]
        recv_exact(s, n)
    s.close()
    return ok


def outcome(call):
    try:
        r = call()
        if isinstance(r, list):  # a multi's results
            return [type(x).__name__ if isinstance(x, Exception) else "ok" for x in r]
        return "ok"
    except Exception as e:  # noqa: BLE001
        return type(e).__name__


class Zxid:
    """The ensemble's last zxid as its leader reports it, read once writes settled."""

    def __init__(self, system, leader):
        self.system, self.leader = system, leader
        self.last = self.now()

    def now(self):
        time.sleep(0.3)
        return int(srvr(self.system, self.leader)["Zxid"], 16)

    def delta(self):
        z = self.now()
        d, self.last = z - self.last, z
        return d


def observe(system, upgrading):
    """Runs the steps; returns [(step, observed)]."""
    obs = []
    roles = {sid: srvr(system, sid).get("Mode") for sid in (1, 2, 3)}
    leader = next(s for s, m in roles.items() if m == "leader")
    a, b = [s for s, m in roles.items() if m == "follower"]
    host = lambda sid: "%s:%d" % system.addr(sid)  # noqa: E731
    # A client of follower b, there from start to end: nothing here may disturb it.
    bystander = KazooClient(host(b), timeout=10)
    bystander.start(20)
    states = []
    bystander.add_listener(states.append)
    bystander.ensure_path("/ls")
    z = Zxid(system, leader)

    c = KazooClient(host(a), timeout=10)
    c.start(20)
    sid, pw = c.client_id
    obs.append(("connect on a follower: transactions", z.delta()))
    obs.append(("mntr local_sessions on that follower", mntr(system, a, "local_sessions")))
    obs.append(("persistent create", outcome(lambda: c.create("/ls/p", b"x"))))
    obs.append(("... transactions", z.delta()))
    obs.append(("ephemeral create", outcome(lambda: c.create("/ls/e", b"x", ephemeral=True))))
    obs.append(("... transactions", z.delta()))
    st = bystander.exists("/ls/e")
    obs.append(("the ephemeral, seen elsewhere, is owned by the session",
                None if st is None else st.ephemeralOwner == sid))

    # The leader's sessions are local too.
    e = KazooClient(host(leader), timeout=10)
    e.start(20)
    obs.append(("connect on the leader: transactions", z.delta()))

    def multi():
        t = e.transaction()
        t.create("/ls/m", b"")
        t.create("/ls/m-e", b"", ephemeral=True)
        return t.commit()
    obs.append(("multi with an ephemeral, on the leader", outcome(multi)))
    obs.append(("... transactions", z.delta()))
    e.stop()
    e.close()
    obs.append(("its close: transactions", z.delta()))

    # Close and expiry of a local session: nothing replicated, and it is gone.
    s, _to, d_id, d_pw = handshake(system.addr(a))
    s.close()
    obs.append(("a second session resumes on its own server (and is closed there)",
                resumes(system.addr(a), d_id, d_pw, close=True)))
    obs.append(("its close: transactions", z.delta()))
    obs.append(("closed, it resumes nowhere", resumes(system.addr(a), d_id, d_pw)))
    s, _to, x_id, x_pw = handshake(system.addr(a), timeout=400)
    s.close()
    time.sleep(2.0)
    obs.append(("a session left alone expires: resumes on its server",
                resumes(system.addr(a), x_id, x_pw)))
    obs.append(("... transactions", z.delta()))

    # Moving: a local session is unknown elsewhere; an upgraded one is global.
    moved = resumes(system.addr(b), sid, pw, close=True)
    obs.append(("the first session resumes on another follower (and is closed there)", moved))
    if not moved:
        c.stop()
    obs.append(("its close: transactions", z.delta()))
    c.stop()
    c.close()
    obs.append(("its ephemeral after its close", bystander.exists("/ls/e") is not None))
    obs.append(("mntr local_sessions on the follower at the end", mntr(system, a, "local_sessions")))
    obs.append(("the bystander's states", [str(s) for s in states]))
    obs.append(("the bystander's session is still good",
                bystander.state == KazooState.CONNECTED and bystander.exists("/ls") is not None))
    bystander.stop()
    bystander.close()
    return obs


EXPECTED = {
    False: [
        ("connect on a follower: transactions", 0),
        ("mntr local_sessions on that follower", 1),
        ("persistent create", "ok"),
        ("... transactions", 1),
        ("ephemeral create", "EphemeralOnLocalSessionError"),
        ("... transactions", 1),
        ("the ephemeral, seen elsewhere, is owned by the session", None),
        ("connect on the leader: transactions", 0),
        ("multi with an ephemeral, on the leader", ["RolledBackError",
                                                    "EphemeralOnLocalSessionError"]),
        ("... transactions", 1),
        ("its close: transactions", 0),
        ("a second session resumes on its own server (and is closed there)", True),
        ("its close: transactions", 0),
        ("closed, it resumes nowhere", False),
        ("a session left alone expires: resumes on its server", False),
        ("... transactions", 0),
        ("the first session resumes on another follower (and is closed there)", False),
        ("its close: transactions", 0),
        ("its ephemeral after its close", False),
        ("mntr local_sessions on the follower at the end", 0),
        ("the bystander's states", []),
        ("the bystander's session is still good", True),
    ],
    True: [
        ("connect on a follower: transactions", 0),
        ("mntr local_sessions on that follower", 1),
        ("persistent create", "ok"),
        ("... transactions", 1),
        ("ephemeral create", "ok"),
        ("... transactions", 2),
        ("the ephemeral, seen elsewhere, is owned by the session", True),
        ("connect on the leader: transactions", 0),
        ("multi with an ephemeral, on the leader", ["ok", "ok"]),
        ("... transactions", 2),
        ("its close: transactions", 1),
        ("a second session resumes on its own server (and is closed there)", True),
        ("its close: transactions", 0),
        ("closed, it resumes nowhere", False),
        ("a session left alone expires: resumes on its server", False),
        ("... transactions", 0),
        ("the first session resumes on another follower (and is closed there)", True),
        ("its close: transactions", 1),
        ("its ephemeral after its close", False),
        ("mntr local_sessions on the follower at the end", 0),
        ("the bystander's states", []),
        ("the bystander's session is still good", True),
    ],
}


def compare(upgrading, results):
    tag = "upgrading " + ("on" if upgrading else "off")
    expected = EXPECTED[upgrading]
    for label, obs in results.items():
        case(f"{tag}: {label} ran every step", len(obs) == len(expected),
             f"{len(obs)} of {len(expected)}")
    for i, (step, want) in enumerate(expected):
        got = {label: obs[i][1] for label, obs in results.items() if i < len(obs)}
        same = len(set(map(repr, got.values()))) == 1
        case(f"{tag}: {step} -> {want!r}",
             same and all(v == want for v in got.values()),
             " ".join(f"{k}={v!r}" for k, v in got.items()))


def run(binary, work, args):
    for upgrading in (False, True):
        extra = ["localSessionsEnabled=true",
                 f"localSessionsUpgradingEnabled={str(upgrading).lower()}",
                 "4lw.commands.whitelist=*"]
        results = {}
        systems = [Paddock(binary, work, f"paddock-{upgrading}")]
        if not args.paddock_only:
            systems.append(ZooKeeper(work, f"zookeeper-{upgrading}"))
        for system in systems:
            try:
                started = system.start(extra)
                case(f"{system.label} ensemble serves ({' '.join(extra)})", started)
                if started:
                    results[system.label] = observe(system, upgrading)
            finally:
                system.stop()
        compare(upgrading, results)


def add_args(ap):
    ap.add_argument("--paddock-only", action="store_true",
                    help="skip ZooKeeper (the expectations are still checked)")


if __name__ == "__main__":
    raise SystemExit(main("local-sessions", [run], add_args))
