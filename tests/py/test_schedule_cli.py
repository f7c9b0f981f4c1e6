"""`mk schedule`: its graph flags reach the program it prints (per-opcode instruction counts)."""
import re

import tiny_models


def opcode_counts(run_mk, folder, *flags):
    out = run_mk("schedule", "--model", folder / "config.json", "--sms", 16, "--summary", *flags).stdout
    line = next(l for l in out.splitlines() if l.startswith("instructions per opcode:"))
    return {op: int(n) for op, n in re.findall(r"(\w+)=(\d+)", line)}


def test_schedule_flags_change_the_program(run_mk, tmp_path):
    folder = tmp_path / "llama"  # 3 layers; 4 query heads over 2 KV heads
    tiny_models.ARCHS["llama"]().save_pretrained(folder)
    prefill = ("--tokens", 64, "--bf16-activations")
    split = opcode_counts(run_mk, folder, *prefill)["matvec_residual"]
    assert opcode_counts(run_mk, folder, *prefill, "--no-split-k")["matvec_residual"] < split, \
        "a short prompt's o_proj and down split by input ranges, unless --no-split-k"
    decode = opcode_counts(run_mk, folder)
    assert "attn_reduce" not in decode, "one KV split at the default context"
    assert opcode_counts(run_mk, folder, "--kv-splits", 3)["attn_reduce"] == 3 * 4, "a merge a layer, a tile a query head"
