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

__all__ = ["HOSTS", "Ensemble", "case", "failures", "free_port", "main"]


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
