"""Shared pytest fixtures: where the `mk` binary is, how to run it, and where nvcc is."""
import os
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def mk_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("MK_BIN", REPO / "build" / "src" / "cli" / "mk"))
    if not path.exists():
        message = f"mk binary not found at {path}: build first (cmake --build --preset default)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def run_mk(mk_bin):
    def run(*args, check=True, timeout=600):
        proc = subprocess.run([str(mk_bin), *map(str, args)], capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"mk {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr}")
        return proc
    return run


@pytest.fixture(scope="session")
def nvcc() -> str:
    """The CUDA compiler: on PATH, else the toolkit's default place; the test is skipped without one."""
    for candidate in (shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if candidate and shutil.which(candidate):
            return candidate
    pytest.skip("no nvcc")
