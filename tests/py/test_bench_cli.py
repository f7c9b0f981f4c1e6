"""`mk bench` on the CPU with a tiny model: the JSON rows of shared/BENCH.md, and contexts past a
model's learned positions dropped with a note instead of failing the run."""
import json

import tiny_models


def test_bench_writes_rows_and_skips_contexts_past_learned_positions(run_mk, tmp_path):
    tiny_models.save_model("gpt2", tmp_path / "m")  # 256 learned positions
    proc = run_mk("bench", "--model", tmp_path / "m", "--device", "cpu", "--contexts", "8,300", "--prompt", "16",
                  "--steps", "4", "--no-baseline", "--out-dir", tmp_path / "out", "--commit", "test")
    assert "skipping context 300: the model has 256 positions" in proc.stderr
    (result,) = list((tmp_path / "out").glob("*.json"))
    data = json.loads(result.read_text())
    assert data["commit"] == "test"
    decode = [r for r in data["rows"] if r["path"] == "cpu" and r.get("context")]
    assert [r["context"] for r in decode] == [8]
    assert decode[0]["ms_per_token"] > 0 and decode[0]["bytes_per_token"] > 0


def test_bench_fails_when_no_context_fits(run_mk, tmp_path):
    tiny_models.save_model("gpt2", tmp_path / "m")
    proc = run_mk("bench", "--model", tmp_path / "m", "--device", "cpu", "--contexts", "300", "--no-baseline",
                  "--out-dir", tmp_path / "out", check=False)
    assert proc.returncode != 0
    assert "every context is past the model's 256 positions" in proc.stderr
