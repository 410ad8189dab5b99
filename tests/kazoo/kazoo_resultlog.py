"""pytest plugin: one line "<outcome> <nodeid>" per test, flushed as each test ends.

Loaded by tests/kazoo/run.sh with `-p kazoo_resultlog`.  Unlike junit xml, which
pytest writes only at the very end, this file stays usable when a run is cut
short by the suite timeout.  Outcomes: passed, failed, skipped, error, deselected.
"""

import os

_path = os.environ.get("KAZOO_RESULT_LOG")
_fh = None
_outcome = {}


def _write(outcome, nodeid):
    global _fh
    if not _path:
        return
    if _fh is None:
        _fh = open(_path, "a", encoding="utf-8")
    _fh.write("%s %s\n" % (outcome, nodeid))
    _fh.flush()


def pytest_deselected(items):
    for item in items:
        _write("deselected", item.nodeid)


def pytest_runtest_logreport(report):
    nodeid = report.nodeid
    if report.when == "setup":
        if report.failed:
            _outcome[nodeid] = "error"
        elif report.skipped:
            _outcome[nodeid] = "skipped"
        else:
            _outcome[nodeid] = "passed"
    elif report.when == "call":
        if report.failed:
            _outcome[nodeid] = "failed"
        elif report.skipped:
            _outcome[nodeid] = "skipped"
        else:
            _outcome[nodeid] = "passed"
    elif report.when == "teardown":
        outcome = _outcome.pop(nodeid, "error")
        # A teardown failure spoils a passed test (pytest counts it as an error).
        if report.failed and outcome == "passed":
            outcome = "error"
        _write(outcome, nodeid)
