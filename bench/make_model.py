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
    # Made in bf16 from the start, on the GPU where it fits with room to spare (70B does not: the CPU).
    with torch.device("meta"):
        params = sum(p.numel() for p in tf.AutoModelForCausalLM.from_config(config).parameters())
    fits = torch.cuda.is_available() and 2 * params * 1.2 < torch.cuda.mem_get_info()[0]
    with torch.device("cuda" if fits else "cpu"):
        model = tf.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.save_pretrained(args.out)
    print(f"wrote {args.shape} ({sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters) to {args.out}")


if __name__ == "__main__":
    main()
