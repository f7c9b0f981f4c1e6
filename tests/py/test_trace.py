"""`mk trace` on the CPU executor: one decode step's per-instruction timeline as a Chrome trace, an
SVG and a summary whose figures agree with the trace."""
import json

import pytest
import torch

import tiny_models


def test_trace_outputs_agree(run_mk, tmp_path):
    folder = tmp_path / "llama"
    tiny_models.save_model("llama", folder)
    out, svg = tmp_path / "t.json", tmp_path / "t.svg"
    proc = run_mk("trace", "--model", folder, "--sms", 5, "--context", 12, "--out", out, "--svg", svg)
    events = json.loads(out.read_text())["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    threads = {e["tid"] for e in events if e["ph"] == "M"}
    assert threads == set(range(5)), "one named thread per SM"
    # Every instruction of the decode program appears once, with a non-negative duration, and
    # within one SM the slices do not overlap (an SM runs its queue in order).
    by_sm = {}
    for e in slices:
        assert e["dur"] >= 0
        by_sm.setdefault(e["tid"], []).append((e["args"]["queue_index"], e["ts"], e["ts"] + e["dur"]))
    for sm, items in by_sm.items():
        items.sort()
        assert [i for i, _, _ in items] == list(range(len(items)))
        for (_, _, end), (_, start, _) in zip(items, items[1:]):
            assert start >= end - 1e-3, f"SM {sm}: overlapping instructions"
    counts = {}
    for e in slices:
        counts[e["cat"]] = counts.get(e["cat"], 0) + 1
    assert counts["argmax"] == 1 and counts["embed"] == 1 and counts["qkv_rope"] >= 3
    summary = proc.stdout
    for op, n in counts.items():
        assert f"| {op} | {n} |" in summary, f"summary disagrees with the trace for {op}"
    text = svg.read_text()
    assert text.startswith("<svg") and text.count("<rect") >= len(slices)


@pytest.mark.parametrize("device, weight_bytes", [
    ("cpu", 4),  # the CPU executor's weights are fp32
    pytest.param("cuda", 2, marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")),
])
def test_trace_counts_the_weights_the_device_reads(device, weight_bytes, run_mk, tmp_path):
    """An instruction's bytes (the scheduler's cost model, which the trace reports) count its weights
    as the device stores them: 4 bytes on the CPU, bf16 on the GPU (once costed at 4 there too)."""
    folder = tmp_path / "llama"  # hidden 64, intermediate 160
    tiny_models.save_model("llama", folder)
    out = tmp_path / "t.json"
    run_mk("trace", "--model", folder, "--sms", 4, "--context", 8, "--device", device, "--out", out,
           "--svg", tmp_path / "t.svg")
    tiles = 0
    for e in json.loads(out.read_text())["traceEvents"]:
        for node, in_dim in ((".o_proj [", 64), (".down [", 160)):
            if e["ph"] == "X" and node in e["name"]:
                begin, end = map(int, e["name"].split("[")[1].rstrip(")").split(","))
                # The fp32 input row, then the tile's rows of weights.
                assert e["args"]["bytes"] == in_dim * 4 + (end - begin) * in_dim * weight_bytes, e
                tiles += 1
    assert tiles >= 2 * 3


def test_trace_prefill(run_mk, tmp_path):
    """--prefill N traces one run of the N-token program: every instruction once, from position 0."""
    folder = tmp_path / "qwen2"
    tiny_models.save_model("qwen2", folder)
    out, svg = tmp_path / "p.json", tmp_path / "p.svg"
    proc = run_mk("trace", "--model", folder, "--sms", 4, "--context", 0, "--prefill", 20, "--ctx", 64,
                  "--out", out, "--svg", svg)
    slices = [e for e in json.loads(out.read_text())["traceEvents"] if e["ph"] == "X"]
    schedule = run_mk("schedule", "--model", folder, "--sms", 4, "--tokens", 20, "--ctx", 64).stdout
    assert "prefill of 20 tokens" in proc.stdout
    counts = {}
    for e in slices:
        counts[e["cat"]] = counts.get(e["cat"], 0) + 1
    # Embed spreads the prompt's tokens over the SMs (4 here); one argmax over the last row's logits.
    assert counts["embed"] == 4 and counts["argmax"] == 1
    assert f"{len(slices)} instructions" in schedule, "the traced program is the 20-token one"


def test_trace_rejects_decode_without_context(run_mk, tmp_path):
    folder = tmp_path / "llama"
    tiny_models.save_model("llama", folder)
    proc = run_mk("trace", "--model", folder, "--context", 0, check=False)
    assert proc.returncode != 0 and "--context 0" in proc.stderr


def test_trace_of_a_tensor_parallel_step(run_mk, tmp_path):
    """--tp N: every rank runs the step, rank 0's program is traced (its all-reduces among them),
    also when the ranks meet between launches."""
    folder = tmp_path / "llama"  # 3 layers
    tiny_models.save_model("llama", folder)
    for comm in ("kernel", "launches"):
        out = tmp_path / f"{comm}.json"
        proc = run_mk("trace", "--model", folder, "--sms", 4, "--context", 12, "--tp", 2, "--tp-comm", comm,
                      "--device", "cpu", "--out", out, "--svg", tmp_path / f"{comm}.svg")
        counts = {}
        for e in json.loads(out.read_text())["traceEvents"]:
            if e["ph"] == "X":
                counts[e["cat"]] = counts.get(e["cat"], 0) + 1
        assert counts["argmax_ranks"] == 1 and counts["all_reduce"] >= 2 * 3, (comm, counts)
        assert f"| all_reduce | {counts['all_reduce']} |" in proc.stdout
