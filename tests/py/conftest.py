"""Shared pytest fixtures: where the `mk` binary is, and how to run it."""
import os
import pathlib
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
