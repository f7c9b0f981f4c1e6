"""Prefill's GEMM pass on the GPU against a host reference: bench/gemm_rate.cu --check runs both forms
(mma.sync everywhere, wgmma on sm_90) over every width the ops use, whole and ragged tiles. Skipped
cleanly without a GPU or without nvcc."""
import os
import subprocess

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def test_gemm_pass_forms_match_the_host(tmp_path, nvcc):
    major, minor = torch.cuda.get_device_capability()
    # The wgmma form exists only in sm_90a code; every other GPU gets its own plain target.
    target = "compute_90a,code=sm_90a" if major == 9 else f"compute_{major}{minor},code=sm_{major}{minor}"
    exe = str(tmp_path / "gemm_rate")
    subprocess.run([nvcc, "-O3", "-std=c++20", "-Isrc", "-Iinclude", "--expt-relaxed-constexpr",
                    f"-gencode=arch={target}", "bench/gemm_rate.cu", "-o", exe], cwd=ROOT, check=True)
    run = subprocess.run([exe, "--check"], capture_output=True, text=True, timeout=300)
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout
    if major == 9:
        assert "check wgmma" in run.stdout  # the Hopper form was exercised, not only mma.sync
