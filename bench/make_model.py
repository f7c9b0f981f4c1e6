"""Writes a random-weight HF model (bf16 safetensors) of a named shape, for `mk bench --shape`."""
import argparse
import pathlib
import sys

import torch
import transformers as tf

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from shapes import SHAPES  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shape", required=True, choices=sorted(SHAPES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    config = SHAPES[args.shape]()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = tf.AutoModelForCausalLM.from_config(config).to(torch.bfloat16)
    model.save_pretrained(args.out)
    print(f"wrote {args.shape} ({sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters) to {args.out}")


if __name__ == "__main__":
    main()
