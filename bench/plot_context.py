"""Draws ms/token against context length from `mk bench` result files as an SVG (no plotting
library needed): one line per (device, path). Usage:
  python3 bench/plot_context.py --out docs/ms-per-token-vs-context.svg bench/results/A.json ..."""
import argparse
import json

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
PATHS = {"generic": "megakernel", "specialized": "megakernel (specialized)",
         "torch_compile_graph": "torch.compile + CUDA graph"}


def series(files):
    out = {}
    for f in files:
        data = json.load(open(f))
        short = data["device"].replace("NVIDIA ", "").replace(" 80GB HBM3", "")
        for r in data["rows"]:
            if r["path"] in PATHS and r.get("context") and "ms_per_token" in r:
                # The commit tells runs of one device apart (before and after a change).
                key = f"{short} {r['model_shape']} @{data.get('commit', '?')}: {PATHS[r['path']]}"
                out.setdefault(key, []).append((r["context"], r["ms_per_token"]))
    return {k: sorted(v) for k, v in sorted(out.items())}


def svg(lines, title):
    W, H, L, R, T, B = 880, 440, 70, 360, 40, 50
    xs = sorted({c for pts in lines.values() for c, _ in pts})
    ymax = max(ms for pts in lines.values() for _, ms in pts) * 1.1
    px = lambda c: L + (xs.index(c) / max(1, len(xs) - 1)) * (W - L - R)  # contexts evenly spaced
    py = lambda ms: H - B - ms / ymax * (H - T - B)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{L}" y="22" font-size="14">{title}</text>',
             f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
             f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>',
             f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">context (tokens in the KV cache)</text>',
             f'<text x="16" y="{(T + H - B) / 2}" transform="rotate(-90 16 {(T + H - B) / 2})" text-anchor="middle">ms per token</text>']
    for c in xs:
        parts.append(f'<text x="{px(c)}" y="{H - B + 16}" text-anchor="middle">{c}</text>')
    step = 0.5 if ymax < 5 else 1.0
    y = 0.0
    while y <= ymax:
        parts.append(f'<line x1="{L - 4}" y1="{py(y)}" x2="{W - R}" y2="{py(y)}" stroke="#ddd"/>'
                     f'<text x="{L - 8}" y="{py(y) + 4}" text-anchor="end">{y:g}</text>')
        y += step
    for i, (name, pts) in enumerate(lines.items()):
        color = COLORS[i % len(COLORS)]
        dash = ' stroke-dasharray="6 4"' if "torch" in name else ""
        d = " ".join(f"{px(c):.1f},{py(ms):.1f}" for c, ms in pts)
        parts.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for c, ms in pts:
            parts.append(f'<circle cx="{px(c):.1f}" cy="{py(ms):.1f}" r="3" fill="{color}"/>')
        ly = T + 10 + i * 20
        parts.append(f'<line x1="{W - R + 15}" y1="{ly}" x2="{W - R + 40}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>'
                     f'<text x="{W - R + 46}" y="{ly + 4}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="Batch-1 decode, Llama-3.2-1B shape (random bf16 weights)")
    args = ap.parse_args()
    with open(args.out, "w") as f:
        f.write(svg(series(args.files), args.title) + "\n")


if __name__ == "__main__":
    main()
