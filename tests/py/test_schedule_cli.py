"""`mk schedule`: its graph flags reach the program it prints (per-opcode instruction counts)."""
import json
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
    decode = opcode_counts(run_mk, folder, "--ctx", 64)
    assert "attn_reduce" not in decode, "one KV split up to kSingleSplitKeys (64) positions"
    assert "attn_reduce" in opcode_counts(run_mk, folder), "several at the model's 256"
    assert opcode_counts(run_mk, folder, "--kv-splits", 3)["attn_reduce"] == 3 * 4, "a merge a layer, a tile a query head"
    assert opcode_counts(run_mk, folder, "--ctx", 64, "--attn-head-blocks", 2)["attn_partial"] == 2 * decode["attn_partial"]
    wide = tmp_path / "qwen2_wide"  # 12 query heads over 2 KV heads: decode takes 3 blocks of 2 by default
    tiny_models.ARCHS["qwen2_wide"]().save_pretrained(wide)
    by_model = opcode_counts(run_mk, wide, "--ctx", 64)["attn_partial"]
    assert by_model == 3 * opcode_counts(run_mk, wide, "--ctx", 64, "--attn-head-blocks", 1)["attn_partial"]
    assert by_model == opcode_counts(run_mk, wide, "--ctx", 64, "--attn-head-blocks", 0)["attn_partial"]


def test_short_last_wave_of_gated_tiles_in_pieces(run_mk, tmp_path):
    # An MLP of 256 outputs makes 4 gate/up tiles of 64 on 3 SMs: the fourth goes out as 2 pieces of
    # 32, unless --no-split-tail.
    folder = tmp_path / "llama"
    tiny_models.ARCHS["llama"]().save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 256
    (folder / "config.json").write_text(json.dumps(config))
    count = lambda *flags: int(re.search(r"matvec_act=(\d+)", run_mk(
        "schedule", "--model", folder / "config.json", "--sms", 3, "--tokens", 64, "--bf16-activations", "--summary",
        *flags).stdout).group(1))
    layers = config["num_hidden_layers"]
    assert count("--no-split-tail") == 4 * layers
    assert count() == 5 * layers


def test_data_waits_mark_the_wait_the_gpu_skips(run_mk, tmp_path):
    folder = tmp_path / "llama"
    tiny_models.ARCHS["llama"]().save_pretrained(folder)
    dump = lambda *flags: run_mk("schedule", "--model", folder / "config.json", "--sms", 16, *flags).stdout
    assert "by data" not in dump("--no-data-waits")
    marked = [l for l in dump().splitlines() if "by data" in l]
    # 3 layers: QKV of the last two, gate/up of all three, down of the last two, the LM head.
    assert {l.split()[0] for l in marked} == {"qkv_rope", "matvec_act", "matvec_residual", "lm_head"}
    assert not any(" L0 " in l and l.startswith(("qkv_rope", "matvec_residual")) for l in marked), \
        "L0's QKV and down read the first write of their row: what is there before could carry any tag"


def test_schedule_prints_one_ranks_program(run_mk, tmp_path):
    # --tp N --rank R: rank R's program (its heads, MLP rows and vocabulary slice), with the
    # all-reduces inside its step, or (--tp-comm launches) cut into a launch per all-reduce.
    folder = tmp_path / "llama"  # 3 layers; 4 query heads over 2 KV heads, intermediate 160, vocab 320
    tiny_models.ARCHS["llama"]().save_pretrained(folder)
    run = lambda *flags, **kw: run_mk("schedule", "--model", folder / "config.json", "--sms", 16, "--summary", *flags, **kw)
    out = run("--tp", 2, "--rank", 1).stdout
    assert "rank 1 of 2: query heads 2, KV heads 1 from 1, MLP rows 80, vocabulary rows 160 from 160" in out, out
    counts = {op: int(n) for op, n in re.findall(r"(\w+)=(\d+)", next(
        l for l in out.splitlines() if l.startswith("instructions per opcode:")))}
    assert counts["argmax_ranks"] == 1 and "all_reduce" in counts
    assert "launches per step" not in out
    assert "launches per step: 8 " in run("--tp", 2, "--tp-comm", "launches").stdout  # 2 a layer, 2 more
    bad = run("--tp", 2, "--rank", 2, check=False)
    assert bad.returncode != 0 and "--rank 2: the ranks of --tp 2 are 0 to 1" in bad.stderr
