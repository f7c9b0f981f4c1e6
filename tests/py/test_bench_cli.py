"""`mk bench` on the CPU with a tiny model: the JSON rows of shared/BENCH.md, and contexts past a
model's learned positions dropped with a note instead of failing the run; the commit it records."""
import json
import re
import subprocess
from pathlib import Path

import tiny_models

REPO = Path(__file__).resolve().parents[2]


def test_bench_writes_rows_and_skips_contexts_past_learned_positions(run_mk, tmp_path):
    tiny_models.save_model("gpt2", tmp_path / "m")  # 256 learned positions
    proc = run_mk("bench", "--model", tmp_path / "m", "--device", "cpu", "--contexts", "8,300", "--prompt", "16",
                  "--steps", "4", "--no-baseline", "--out-dir", tmp_path / "out", "--commit", "test")
    assert "skipping context 300: the model has 256 positions" in proc.stderr
    (result,) = list((tmp_path / "out").glob("*.json"))
    data = json.loads(result.read_text())
    assert data["commit"] == "test"
    assert "peak_bandwidth_gbps" not in data, "the GPU's"
    decode = [r for r in data["rows"] if r["path"] == "cpu" and r.get("context")]
    assert [r["context"] for r in decode] == [8]
    assert decode[0]["ms_per_token"] > 0 and decode[0]["bytes_per_token"] > 0
    assert "pipe_pages" not in decode[0] and "pipe_inflight" not in decode[0], "the weight pipe is the GPU's"
    (ttft,) = [r for r in data["rows"] if "ttft_ms" in r]
    assert ttft["prompt_tokens"] == 16 and ttft["ttft_ms"] > 0
    assert "gpu_ttft_ms" not in ttft and "host_phases_ms" not in ttft, "CUDA-event timing is the GPU's"


def test_bench_fails_when_no_context_fits(run_mk, tmp_path):
    tiny_models.save_model("gpt2", tmp_path / "m")
    proc = run_mk("bench", "--model", tmp_path / "m", "--device", "cpu", "--contexts", "300", "--no-baseline",
                  "--out-dir", tmp_path / "out", check=False)
    assert proc.returncode != 0
    assert "every context is past the model's 256 positions" in proc.stderr


def test_version_and_bench_name_the_commit_mk_was_built_from(run_mk, tmp_path, monkeypatch):
    # Stamped at build time (cmake/build_commit.cmake), not read from the current directory's git:
    # on the GPU machine the binary runs on a copy of the tree whose git is the session's first state.
    version = run_mk("--version").stdout.strip()
    assert re.fullmatch(r"mk [0-9a-f]{7,40}(-dirty)?", version), version
    built = version.split()[1]
    # Where this checkout's git knows the commit, it is HEAD or an ancestor (a binary built before
    # the latest commits); a copy whose git is older than the build does not know it.
    git = lambda *args: subprocess.run(["git", *args], cwd=REPO, capture_output=True).returncode
    if git("cat-file", "-e", built.removesuffix("-dirty") + "^{commit}") == 0:
        assert git("merge-base", "--is-ancestor", built.removesuffix("-dirty"), "HEAD") == 0, built
    monkeypatch.delenv("MK_COMMIT", raising=False)
    tiny_models.save_model("gpt2", tmp_path / "m")
    run_mk("bench", "--model", tmp_path / "m", "--device", "cpu", "--contexts", "8", "--prompt", "8", "--steps", "2",
           "--no-baseline", "--out-dir", tmp_path / "out")
    (result,) = list((tmp_path / "out").glob("*.json"))
    assert json.loads(result.read_text())["commit"] == built


def test_bench_counts_the_bytes_a_step_reads_on_every_rank(run_mk, tmp_path):
    # Every weight once (fp32 on the CPU) and the KV cache, not the token embedding of an untied
    # model (a step reads one row of it); with --tp 2 the ranks' slices add up to the model, and
    # the norms each rank replicates are read by each. The rows say which TP they ran, and how the
    # ranks met (inside the step, or between launches, both measured by one run).
    model = tiny_models.save_model("mistral", tmp_path / "m")  # untied embedding, 2 KV heads
    cfg = model.config
    params = {name: p.numel() for name, p in model.named_parameters()}
    norms = sum(n for name, n in params.items() if "norm" in name)
    weights = sum(params.values()) - params["model.embed_tokens.weight"]
    context = 8 + 4 + 4 // 2  # bench counts the KV cache at the middle of the timed steps
    kv = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads) * context
    for tp, paths in ((1, ["cpu"]), (2, ["cpu_tp2", "cpu_tp2_launches"])):
        out = tmp_path / f"out{tp}"
        run_mk("bench", "--model", tmp_path / "m", "--device", "cpu", "--contexts", "8", "--prompt", "8",
               "--steps", "4", "--no-baseline", "--out-dir", out, "--commit", "test", "--tp", tp)
        (result,) = list(out.glob("*.json"))
        data = json.loads(result.read_text())
        rows = [r for r in data["rows"] if r.get("context") == 8 and "bytes_per_token" in r]
        # With --tp, the ranks meeting between launches measured after the in-kernel all-reduce.
        assert [r["path"] for r in rows] == paths
        assert data.get("tp", 1) == tp
        for row in rows:
            assert row["bytes_per_token"] == 4 * (weights + (tp - 1) * norms + kv), (tp, row["path"])
