"""bench/readme_table.py: the README's performance rows from an `mk bench` result file."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "readme_table.py")


def run(*paths):
    return subprocess.run([sys.executable, SCRIPT, *map(str, paths)], capture_output=True, text=True)


def test_rows_speedup_and_ttft(tmp_path):
    result = {
        "device": "NVIDIA H100 80GB HBM3", "commit": "abc1234", "date": "2026-12-06", "read_bandwidth_gbps": 3000.4,
        "rows": [
            {"model_shape": "m", "path": "generic", "context": 1024, "ms_per_token": 1.5, "tokens_per_s": 666.7,
             "bandwidth_fraction": 0.60049},
            {"model_shape": "m", "path": "generic", "context": 32, "ms_per_token": 1.0, "tokens_per_s": 1000.0,
             "bandwidth_fraction": 0.7},
            {"model_shape": "m", "path": "specialized", "context": 32, "ms_per_token": 1.1, "tokens_per_s": 909.1,
             "bandwidth_fraction": 0.65},
            {"model_shape": "m", "path": "torch_compile_graph", "context": 32, "ms_per_token": 2.5,
             "tokens_per_s": 400.0, "bandwidth_fraction": 0.28},
            {"model_shape": "m", "path": "generic", "context": 0, "prompt_tokens": 512, "ttft_ms": 4.6,
             "gpu_ttft_ms": 4.5},
            {"model_shape": "m", "path": "torch_graph_prefill", "context": 0, "prompt_tokens": 512, "ttft_ms": 5.0},
        ]}
    (tmp_path / "r.json").write_text(json.dumps(result))
    out = run(tmp_path / "r.json")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "| H100 (3000 GB/s) | m | 32 | 1.000 (1000, 70.0%) | 2.500 (28.0%) | 2.50× |",
        "| H100 | m | 1024 | 1.500 (667, 60.0%) | (not run) |  |",
        "| H100 | m, `--kernel specialized` | 32 | 1.100 (65.0%) | | |",
        "TTFT, 512-token prompt, H100, m: 4.500 ms by CUDA events against PyTorch's prefill graph 5.000 (0.90×)"
        " (commit abc1234)",
    ]


def test_a_bad_file_is_one_line_and_an_exit_code(tmp_path):
    (tmp_path / "bad.json").write_text('{"device": "x", "rows": [')
    out = run(tmp_path / "bad.json")
    assert out.returncode == 1 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "bad.json" in out.stderr
    (tmp_path / "norows.json").write_text('{"device": "x"}')
    out = run(tmp_path / "norows.json")
    assert out.returncode == 1 and "norows.json" in out.stderr
