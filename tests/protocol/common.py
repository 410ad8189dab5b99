"""What the protocol tests share: the checks' output (tests/security/check.py) and a main that
takes the paddock binary from --bin, makes a work directory and prints the summary."""

import argparse
import os
import shutil
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "tests", "security"))
from check import case, failures, free_port  # noqa: E402,F401
from quorum import HOSTS, Ensemble  # noqa: E402,F401

__all__ = ["HOSTS", "Ensemble", "ZooKeeperEnsemble", "case", "failures", "free_port", "main",
           "word"]


def main(name, steps, add_args=None):
    """Runs each step(binary, work, args) in turn; exit status 1 if any check failed."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(repo, "target", "release", "paddock"))
    ap.add_argument("--keep", action="store_true")
    if add_args:
        add_args(ap)
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    if not os.path.exists(binary):
        print(f"FAIL {binary} is missing (cargo build --release)")
        return 1
    work = tempfile.mkdtemp(prefix=f"paddock-{name}-")
    try:
        for step in steps:
            step(binary, work, a)
    finally:
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{name}: {len(failures)} failed")
    return 1 if failures else 0


def word(host, port, w, timeout=5):
    """A four-letter word's answer ('' when the server does not answer)."""
    import socket
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(w.encode())
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out.decode(errors="replace")
    except OSError:
        return ""


class ZooKeeperEnsemble:
    """Apache ZooKeeper 3.8 (Debian's package) as three servers on 127.0.0.1, each started by
    scripts/start-zookeeper.sh (which returns once its server serves), all at once."""

    def __init__(self, work, name):
        self.root = os.path.join(work, name)
        self.ports = {sid: (free_port(), free_port(), free_port()) for sid in (1, 2, 3)}
        self.pids = []

    def addr(self, sid):
        return "127.0.0.1", self.ports[sid][0]

    def start(self, extra):
        import subprocess
        lines = [f"server.{i}=127.0.0.1:{q}:{e}" for i, (_, q, e) in self.ports.items()]
        lines += ["tickTime=200", "initLimit=20", "syncLimit=10"] + list(extra)
        procs = []
        for sid in self.ports:
            d = os.path.join(self.root, f"s{sid}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "myid"), "w") as f:
                f.write(f"{sid}\n")
            procs.append(subprocess.Popen(
                [os.path.join(repo, "scripts", "start-zookeeper.sh"), str(self.ports[sid][0]), d,
                 *lines], stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        ok = True
        for p in procs:
            out, err = p.communicate(120)
            if p.returncode == 0:
                self.pids.append(int(out.decode().strip()))
            else:
                ok = False
                print(err.decode(errors="replace")[-2000:])
        return ok

    def stop(self):
        import signal
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pids = []
        shutil.rmtree(self.root, ignore_errors=True)
