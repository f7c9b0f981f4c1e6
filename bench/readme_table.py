#!/usr/bin/env python3
"""The README's performance rows from `mk bench` result files (bench/results/*.json, the shape of
../shared/BENCH.md), so that refreshing the table after a device run is a copy, not hand arithmetic.

For each file: one row per context of the generic path, with the compiled PyTorch step beside it
and the speedup (torch ms / our ms); one row for the specialized build's contexts together, if it
ran; and the time to first token against PyTorch's prefill graph, if the run measured it.

    python3 bench/readme_table.py bench/results/NVIDIA-H100-80GB-HBM3-llama-3.2-1b-*.json
"""
import argparse
import json
import re
import sys


def card(device: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'H100': the README names cards by their model number."""
    found = re.search(r"\b([A-Z]{1,2}\d{2,4}[A-Za-z]?)\b", device.replace("NVIDIA", ""))
    return found.group(1) if found else device


def pct(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def rows_of(result: dict) -> list[str]:
    by_path: dict[str, dict[int, dict]] = {}
    prefill: dict[str, dict] = {}
    shape = None
    for r in result["rows"]:
        shape = shape or r.get("model_shape")
        if r.get("prompt_tokens"):
            prefill[r["path"]] = r
        elif "ms_per_token" in r:
            by_path.setdefault(r["path"], {})[r["context"]] = r
    name = card(result["device"])
    out = []
    first = True
    for ctx, ours in sorted(by_path.get("generic", {}).items()):
        label = f"{name} ({result['read_bandwidth_gbps']:.0f} GB/s)" if first else name
        first = False
        cells = [label, shape, str(ctx),
                 f"{ours['ms_per_token']:.3f} ({ours['tokens_per_s']:.0f}, {pct(ours['bandwidth_fraction'])})"]
        torch = by_path.get("torch_compile_graph", {}).get(ctx)
        if torch:
            cells += [f"{torch['ms_per_token']:.3f} ({pct(torch['bandwidth_fraction'])})",
                      f"{torch['ms_per_token'] / ours['ms_per_token']:.2f}×"]
        else:
            cells += ["(not run)", ""]
        out.append("| " + " | ".join(cells) + " |")
    special = sorted(by_path.get("specialized", {}).items())
    if special:
        ctxs = " / ".join(str(c) for c, _ in special)
        ms = " / ".join(f"{r['ms_per_token']:.3f}" for _, r in special)
        bw = " / ".join(f"{100 * r['bandwidth_fraction']:.1f}" for _, r in special)
        out.append(f"| {name} | {shape}, `--kernel specialized` | {ctxs} | {ms} ({bw}%) | | |")
    ours, graph = prefill.get("generic"), prefill.get("torch_graph_prefill")
    if ours:
        ttft = ours.get("gpu_ttft_ms", ours["ttft_ms"])
        line = f"TTFT, {ours['prompt_tokens']}-token prompt, {name}, {shape}: {ttft:.3f} ms by CUDA events"
        if graph:
            line += f" against PyTorch's prefill graph {graph['ttft_ms']:.3f} ({ttft / graph['ttft_ms']:.2f}×)"
        out.append(line + f" (commit {result.get('commit', '?')})")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="mk bench result files (JSON)")
    args = ap.parse_args()
    for path in args.results:
        try:
            with open(path) as f:
                result = json.load(f)
            lines = rows_of(result)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"readme_table: {path}: {e}", file=sys.stderr)
            return 1
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
