"""A scripted workload whose audit lines tests/security/check.py compares between Paddock and
Apache ZooKeeper 3.8: every audited operation, failures included.

  audit_workload.py <port>
"""
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoAuthError, NodeExistsError, NoNodeError
from kazoo.security import make_acl, make_digest_acl


def main(port):
    zk = KazooClient(hosts=f"127.0.0.1:{port}")
    zk.start()
    zk.add_auth("digest", "alice:pw")
    zk.create("/a", b"1")
    try:
        zk.create("/a", b"1")  # NODEEXISTS: a failure
    except NodeExistsError:
        pass
    zk.create("/a/e", b"", ephemeral=True)
    zk.create("/a/s-", b"", sequence=True)
    zk.create("/a/es-", b"", ephemeral=True, sequence=True)
    zk.set("/a", b"2")
    try:
        zk.set("/a", b"3", version=99)  # BADVERSION
    except BadVersionError:
        pass
    zk.set_acls("/a", [make_digest_acl("alice", "pw", all=True)])
    zk.create("/acl2", b"", acl=[make_acl("world", "anyone", read=True),
                                 make_acl("ip", "127.0.0.1", all=True)])
    zk.set_acls("/acl2", [make_acl("world", "anyone", read=True, write=True),
                          make_acl("ip", "127.0.0.1", all=True)])
    try:
        zk.delete("/nope")  # NONODE
    except NoNodeError:
        pass
    t = zk.transaction()
    t.create("/m1", b"")
    t.set_data("/m1", b"x")
    t.check("/m1", 1)
    t.delete("/m1")
    t.commit()
    t = zk.transaction()
    t.create("/m2", b"")
    t.delete("/nope")
    t.commit()  # fails as a whole
    other = KazooClient(hosts=f"127.0.0.1:{port}")
    other.start()
    try:
        other.set("/a", b"4")  # NOAUTH
    except NoAuthError:
        pass
    other.create("/z/e2", b"", ephemeral=True, makepath=True)
    other.stop()  # closes the session: its ephemeral goes
    other.close()
    zk.delete("/a/e")
    zk.stop()
    zk.close()


if __name__ == "__main__":
    main(sys.argv[1])
