"""bench/trace_stages.py: a traced run's critical path by node, with each node's gaps (the time an
SM spent between its previous instruction's end and a tile's start)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "trace_stages.py")


def event(name, sm, ts, dur):
    return {"ph": "X", "name": name, "tid": sm, "ts": ts, "dur": dur}


def test_chain_and_gaps(tmp_path):
    # SM 0: L0.a 0-10, then L0.b 12-20 (gap 2). SM 1: L0.a 1-15 (gap 1), then L0.b 16.5-30 (gap 1.5).
    trace = {"traceEvents": [event("L0.a [0,8)", 0, 0.0, 10.0), event("L0.a [8,16)", 1, 1.0, 14.0),
                             event("L0.b [0,8)", 0, 12.0, 8.0), event("L0.b [8,16)", 1, 16.5, 13.5),
                             {"ph": "M", "name": "thread_name", "tid": 0}]}
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(trace))
    r = subprocess.run([sys.executable, SCRIPT, str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[-4:] == ["median", "gap", "last", "gap"]
    # node, tiles, SMs, first start, last start, last end, +chain, median tile, median gap, last gap
    assert lines[1].split() == ["L0.a", "2", "2", "0.0", "1.0", "15.0", "15.0", "12.00", "0.50", "1.00"]
    assert lines[2].split() == ["L0.b", "2", "2", "12.0", "16.5", "30.0", "15.0", "10.75", "1.75", "1.50"]
