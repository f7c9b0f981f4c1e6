# scripts/cuda_compile_guard.sh, the CUDA compiler launcher: it fails a compile in which ptxas
# serialized wgmma (C7510), and passes every other compile's output and exit status through.
import pathlib
import subprocess

GUARD = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "cuda_compile_guard.sh"
C7510 = ("ptxas info    : (C7510) Potential Performance Loss: wgmma.mma_async instructions are serialized "
         "due to wgmma pipeline crossing function boundary at a function call in the function 'k'")


def run(script):
    return subprocess.run([GUARD, "sh", "-c", script], capture_output=True, text=True)


def test_a_compile_that_serialized_wgmma_fails():
    r = run(f"echo \"{C7510}\" >&2")
    assert r.returncode != 0
    assert C7510 in r.stderr and "cuda_compile_guard" in r.stderr


def test_other_compiles_pass_through():
    r = run("echo out; echo 'ptxas info : 0 bytes stack frame' >&2; exit 0")
    assert (r.returncode, r.stdout) == (0, "out\n")
    assert "0 bytes stack frame" in r.stderr and "cuda_compile_guard" not in r.stderr
    assert run("echo err >&2; exit 3").returncode == 3
