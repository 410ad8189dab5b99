#!/usr/bin/env python3
"""A real Prometheus (Debian's package) scrapes a three-server Paddock ensemble under load, and
the series are read back through its query API: ZooKeeper's names and types (gauges, summaries
with quantiles, `_count`/`_sum`), Paddock's latency histograms per operation and per session
count, the process figures that stand in for the JVM's, and `promtool check metrics`.

  tests/ops/prometheus.py [--bin target/release/paddock] [--keep]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(repo, "tests", "security"))
from check import case, failures, free_port  # noqa: E402
from quorum import HOSTS, Ensemble  # noqa: E402

PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

# promtool's naming lints that ZooKeeper's own names fail: dashboards need these names as
# they are, so these complaints (and only these) are expected (`znode_count`,
# `proposal_count`, counters without `_total`, `sync_processor_queue_time_ms`).
EXPECTED_LINTS = ('should not have "_count" suffix', 'should have "_total" suffix',
                  "should not contain abbreviated units")


def query(port, q):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.loads(r.read())
    if body.get("status") != "success":
        raise RuntimeError(f"{q}: {body}")
    return [(s["metric"], float(s["value"][1])) for s in body["data"]["result"]]


def wait_for(port, q, ok, timeout=40):
    """Polls a query until `ok(result)`; returns the last result."""
    deadline = time.time() + timeout
    res = []
    while time.time() < deadline:
        try:
            res = query(port, q)
            if ok(res):
                return res
        except (OSError, RuntimeError, ValueError):
            pass
        time.sleep(0.5)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(repo, "target", "release", "paddock"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    binary = os.path.abspath(a.bin)
    if not os.path.exists(binary):
        print(f"FAIL {binary} is missing (cargo build --release)")
        return 1
    if not shutil.which("prometheus"):
        print("FAIL prometheus is not installed (scripts/install-deps.sh)")
        return 1
    work = tempfile.mkdtemp(prefix="paddock-prometheus-")
    ens = Ensemble(binary, work, "ens")
    metrics_ports = {sid: free_port() for sid in HOSTS}
    prom = None
    try:
        for sid, m in ens.members.items():
            m.start([f"metricsProvider.className={PROVIDER}",
                     f"metricsProvider.httpHost={m.host}",
                     f"metricsProvider.httpPort={metrics_ports[sid]}",
                     "admin.enableServer=false"])
        modes = ens.wait_serving(list(HOSTS))
        case("the ensemble serves", sorted(map(str, modes.values())) == ["follower", "follower", "leader"],
             f"{modes}")
        targets = [f"{HOSTS[sid]}:{metrics_ports[sid]}" for sid in HOSTS]
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: paddock\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
        prom_port = free_port()
        prom = subprocess.Popen(
            ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={work}/tsdb",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=open(os.path.join(work, "prometheus.log"), "wb"), stderr=subprocess.STDOUT)
        up = wait_for(prom_port, 'up{job="paddock"}',
                      lambda r: len(r) == 3 and all(v == 1 for _, v in r))
        case("Prometheus scrapes all three servers (up == 1)",
             len(up) == 3 and all(v == 1 for _, v in up), f"{up}")
        # Load: a mixed read/write workload over all three servers, and enough sessions that
        # the per-session-count histogram fills a bucket above the first.
        bench = subprocess.run(
            [binary, "bench", "run", "--server", ens.hosts(), "--workloads", "mixed,create",
             "--sessions", "16", "--duration", "3s", "--warmup", "0s", "--quiet",
             "--format", "json"], capture_output=True, text=True, timeout=120)
        case("the load ran", bench.returncode == 0, bench.stderr[-500:])
        # Prometheus sees the load once it scrapes after it.
        time.sleep(2.5)
        zn = wait_for(prom_port, "znode_count", lambda r: len(r) == 3 and min(v for _, v in r) > 1000)
        case("znode_count from every server, the same on all (gauge)",
             len(zn) == 3 and len({v for _, v in zn}) == 1, f"{zn}")
        reads = query(prom_port, "sum(readlatency_count)")
        writes = query(prom_port, "sum(updatelatency_count)")
        case("readlatency_count and updatelatency_count counted the load (summaries)",
             reads and reads[0][1] > 1000 and writes and writes[0][1] > 100, f"{reads} {writes}")
        q99 = query(prom_port, 'readlatency{quantile="0.99"}')
        case("readlatency has ZooKeeper's quantiles", len(q99) == 3, f"{q99}")
        fs = query(prom_port, "fsynctime_count")
        case("fsynctime_count on every server", len(fs) == 3 and all(v > 0 for _, v in fs), f"{fs}")
        leader = query(prom_port, "learners")
        case("the leader reports its learners (2) and synced_followers",
             [v for _, v in leader] == [2.0]
             and [v for _, v in query(prom_port, "synced_followers")] == [2.0], f"{leader}")
        qs = query(prom_port, "quorum_size")
        case("quorum_size on every server", [v for _, v in qs] == [3.0] * 3, f"{qs}")
        h = query(prom_port, 'histogram_quantile(0.99, sum by (le) '
                  '(increase(paddock_request_duration_seconds_bucket{op="getData"}[1m])))')
        case("per-operation histograms: a p99 of getData from the buckets",
             len(h) == 1 and 0 < h[0][1] < 10, f"{h}")
        ops = {m["op"] for m, _ in query(prom_port, "paddock_request_duration_seconds_count")}
        case("per-operation histograms cover the load's operations",
             {"getData", "setData", "create"} <= ops, f"{ops}")
        by_sessions = query(prom_port, "paddock_request_duration_by_sessions_seconds_count")
        case("histograms by session count", {m["sessions"] for m, _ in by_sessions} >= {"10"},
             f"{by_sessions}")
        # ZooKeeper's replication figures: the leader proposes and commits what the
        # followers receive; the commit latency comes from the leader's stamps.
        proposed = query(prom_port, "max(proposal_count)")
        committed = query(prom_port, "max(commit_count)")
        received = query(prom_port, "learner_proposal_received_count > 0")
        acks = query(prom_port, "quorum_ack_latency_count > 0")
        case("proposal_count and commit_count on the leader, learner_proposal_received_count "
             "on both followers, quorum_ack_latency counted",
             proposed and proposed[0][1] > 100 and committed and committed[0][1] >= proposed[0][1] - 100
             and len(received) == 2 and all(v >= proposed[0][1] - 100 for _, v in received)
             and len(acks) == 1, f"{proposed} {committed} {received} {acks}")
        got = query(prom_port, "bytes_received_count")
        case("bytes_received_count on every server", len(got) == 3 and sum(v for _, v in got) > 1e5,
             f"{got}")
        rss = query(prom_port, "process_resident_memory_bytes")
        cpu = query(prom_port, "process_cpu_seconds_total")
        case("process figures stand in for the JVM's",
             len(rss) == 3 and all(v > 1e6 for _, v in rss) and len(cpu) == 3, f"{rss} {cpu}")
        # promtool parses the exposition; only the naming lints ZooKeeper's names fail remain.
        text = urllib.request.urlopen(f"http://{targets[0]}/metrics", timeout=10).read()
        pt = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
        problems = [line for line in (pt.stdout + pt.stderr).decode().splitlines()
                    if line.strip() and not any(e in line for e in EXPECTED_LINTS)]
        case("promtool check metrics: nothing but ZooKeeper's own names' lints",
             not problems, "; ".join(problems[:5]))
    finally:
        if prom and prom.poll() is None:
            prom.terminate()
            prom.wait(10)
        ens.stop()
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"prometheus: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
