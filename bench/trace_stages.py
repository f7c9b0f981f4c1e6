#!/usr/bin/env python3
"""The critical path of one traced program run, stage by stage.

`mk trace` writes a Chrome trace with one event per instruction, named after its graph node
("L5.gate_up [128,192)"). This groups the events by node and prints, for each, when its first tile
started, when its last tile started and when its last tile ended (µs from the run's start), and the
median tile time. A node's "last end" is when every consumer of it may go on, so the gaps between
one node's last end and the next node's last end are the chain the step waits on.

"gap" is the time between an SM's previous instruction's end and this tile's start (its fetch and
its counter waits: a tile's recorded start is past them; waits by data fall inside the tile), the
median over the node's tiles and that of the tile that ended last (the one the chain waited on).

Usage: python3 bench/trace_stages.py trace.json [--layers 0,8,15]
"""
import argparse
import json
import re
import statistics
from collections import defaultdict


def stages(path):
    events = [e for e in json.load(open(path))["traceEvents"] if e.get("ph") == "X"]
    # Each event's gap: from the end of the one before it on its SM (the run's start for the first).
    gap = {}
    by_sm = defaultdict(list)
    for e in events:
        by_sm[e["tid"]].append(e)
    for evs in by_sm.values():
        prev_end = 0.0
        for e in sorted(evs, key=lambda e: e["ts"]):
            gap[id(e)] = e["ts"] - prev_end
            prev_end = e["ts"] + e["dur"]
    by_node = defaultdict(list)
    for e in events:
        by_node[e["name"].split(" [")[0]].append(e)
    rows = []
    for node, evs in by_node.items():
        starts = [e["ts"] for e in evs]
        last = max(evs, key=lambda e: e["ts"] + e["dur"])
        rows.append({"node": node, "tiles": len(evs), "sms": len({e["tid"] for e in evs}),
                     "first_start": min(starts), "last_start": max(starts), "last_end": last["ts"] + last["dur"],
                     "median_us": statistics.median(e["dur"] for e in evs),
                     "median_gap": statistics.median(gap[id(e)] for e in evs), "last_gap": gap[id(last)]})
    rows.sort(key=lambda r: r["last_end"])
    return rows


def layer_of(node):
    m = re.match(r"L(\d+)\.", node)
    return int(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--layers", default="", help="only these layers (comma-separated), plus the unlayered nodes")
    args = ap.parse_args()
    keep = {int(x) for x in args.layers.split(",") if x}
    rows = stages(args.trace)
    print(f"{'node':<22}{'tiles':>6}{'SMs':>5}{'first start':>13}{'last start':>12}{'last end':>10}"
          f"{'+chain':>8}{'median tile':>13}{'median gap':>12}{'last gap':>10}")
    prev_end = 0.0
    for r in rows:
        chain = r["last_end"] - prev_end
        prev_end = r["last_end"]
        if keep and layer_of(r["node"]) not in keep and layer_of(r["node"]) is not None:
            continue
        print(f"{r['node']:<22}{r['tiles']:>6}{r['sms']:>5}{r['first_start']:>13.1f}{r['last_start']:>12.1f}"
              f"{r['last_end']:>10.1f}{chain:>8.1f}{r['median_us']:>13.2f}{r['median_gap']:>12.2f}{r['last_gap']:>10.2f}")
    layers = defaultdict(float)
    for r in rows:
        if layer_of(r["node"]) is not None:
            layers[layer_of(r["node"])] = max(layers[layer_of(r["node"])], r["last_end"])
    ends = [layers[k] for k in sorted(layers)]
    if len(ends) > 2:
        per = [b - a for a, b in zip(ends, ends[1:])]
        print(f"per layer (last end to last end): median {statistics.median(per):.1f} us, "
              f"min {min(per):.1f}, max {max(per):.1f}; run {rows[-1]['last_end']:.1f} us")


if __name__ == "__main__":
    main()
