"""The `mk` binary against the errors a user can meet (docs/ERRORS.md): each case asserts the exit
code, that stderr is exactly one line starting with "mk: error:", and the key words of the message.
Plus Ctrl-C during `mk generate` and `mk chat`: the text so far, "stop: interrupted", exit 130."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest
import torch

from tiny_models import make_model, save_model

EXIT_ERROR, EXIT_USAGE, EXIT_MEMORY, EXIT_INTERRUPTED = 1, 2, 3, 130


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random llama saved by transformers (config.json + model.safetensors, no tokenizer)."""
    folder = tmp_path_factory.mktemp("tiny_llama")
    save_model("llama", folder)
    return folder


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def run_error(mk_bin, *args, code=EXIT_ERROR, words=(), env=None, timeout=300):
    proc = subprocess.run([str(mk_bin), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    lines = proc.stderr.splitlines()
    assert proc.returncode == code, f"exit {proc.returncode}, wanted {code}; stderr: {proc.stderr}"
    assert len(lines) == 1 and lines[0].startswith("mk: error: "), f"stderr is not one error line: {proc.stderr!r}"
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"
    return lines[0]


def test_missing_model_path(mk_bin, tmp_path):
    run_error(mk_bin, "generate", "-m", tmp_path / "nope.gguf", words=("nope.gguf", "no such file or folder"))


def test_missing_default_model(mk_bin, tmp_path):
    run_error(mk_bin, "generate", env={"MK_MODEL": str(tmp_path / "gone")}, words=("MK_MODEL=", "no such file"))


def test_folder_without_config(mk_bin, tmp_path):
    run_error(mk_bin, "logits", "--model", tmp_path, "--tokens", "1,2", words=("config.json", "no such file"))
    run_error(mk_bin, "generate", "-m", tmp_path, words=("not a model folder (no config.json)",))


def test_config_not_json(mk_bin, tiny, tmp_path):
    folder = copy_model(tiny, tmp_path / "m")
    (folder / "config.json").write_text("{not json")
    run_error(mk_bin, "logits", "--model", folder, "--tokens", "1,2", words=("config.json", "invalid JSON"))


def test_unknown_architecture(mk_bin, tiny, tmp_path):
    folder = copy_model(tiny, tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["FalconForCausalLM"]
    config["model_type"] = "falcon"
    (folder / "config.json").write_text(json.dumps(config))
    run_error(mk_bin, "logits", "--model", folder, "--tokens", "1,2",
              words=("unsupported architecture 'FalconForCausalLM'", "supported:"))


def test_truncated_safetensors(mk_bin, tiny, tmp_path):
    folder = copy_model(tiny, tmp_path / "m")
    st = folder / "model.safetensors"
    data = st.read_bytes()
    st.write_bytes(data[: len(data) // 2])
    run_error(mk_bin, "logits", "--model", folder, "--tokens", "1,2", words=("model.safetensors", "data_offsets"))


def test_safetensors_header_past_the_end(mk_bin, tiny, tmp_path):
    folder = copy_model(tiny, tmp_path / "m")
    st = folder / "model.safetensors"
    st.write_bytes(st.read_bytes()[:100])
    run_error(mk_bin, "logits", "--model", folder, "--tokens", "1,2", words=("header length", "past the end"))


def test_gguf_bad_magic(mk_bin, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGML" + bytes(60))
    run_error(mk_bin, "logits", "--model", bad, "--tokens", "1,2", words=("bad.gguf", "magic"))


def test_not_a_model_file(mk_bin, tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    run_error(mk_bin, "generate", "-m", txt, "--tokenizer", txt, words=("notes.txt",))


def test_missing_tokenizer(mk_bin, tiny):
    line = run_error(mk_bin, "generate", "-m", tiny, "-p", "hi", words=("no tokenizer", "tokenizer.json", "--tokenizer"))
    assert str(tiny) in line


def test_unusable_tokenizer(mk_bin, tiny, tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"model": {"type": "Unigram"}}')
    run_error(mk_bin, "generate", "-m", tiny, "--tokenizer", bad, "-p", "hi", words=("tokenizer.json",))


def test_prompt_longer_than_the_context(mk_bin):
    run_error(mk_bin, "generate", "--ctx", "8", "--device", "cpu", "-p", "one two three four five six seven eight nine ten",
              words=("the prompt has", "context holds 8", "--truncate"))


def test_absurd_context_is_a_memory_error(mk_bin, tiny):
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--ctx", "4000000000", code=EXIT_MEMORY,
              words=("model needs", "of host memory", "available", "for 4000000000 tokens", "--ctx"))


def test_negative_context_is_a_usage_error(mk_bin, tiny):
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--ctx", "-5", code=EXIT_USAGE,
              words=("--ctx", "mk logits --help"))


def test_unknown_device(mk_bin):
    run_error(mk_bin, "generate", "--device", "gpu", code=EXIT_USAGE, words=("--device", "gpu", "mk generate --help"))


def test_unknown_flag_and_command(mk_bin):
    run_error(mk_bin, "generate", "--frobnicate", code=EXIT_USAGE, words=("--frobnicate",))
    run_error(mk_bin, "frobnicate", code=EXIT_USAGE, words=("frobnicate", "'mk --help'"))


def test_cuda_without_a_device(mk_bin, tiny):
    proc = subprocess.run([str(mk_bin), "logits", "--model", str(tiny), "--tokens", "1,2", "--device", "cuda"],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode == 0:
        pytest.skip("a CUDA device is usable here")
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--device", "cuda",
              words=("--device cuda: no usable CUDA device",))


def test_host_memory_limit(mk_bin, tiny):
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", code=EXIT_MEMORY,
              env={"MK_HOST_MEMORY_LIMIT_BYTES": "100000"},
              words=("model needs", "of host memory, 0.1 MiB available", "fp32 weights"))
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", env={"MK_HOST_MEMORY_LIMIT_BYTES": "lots"},
              words=("MK_HOST_MEMORY_LIMIT_BYTES", "not a byte count"))
    # The default model (GGUF) is refused before it is dequantized.
    run_error(mk_bin, "generate", "--device", "cpu", code=EXIT_MEMORY, env={"MK_HOST_MEMORY_LIMIT_BYTES": "1000000"},
              words=("model needs", "of host memory, 1.0 MiB available"), timeout=30)


def test_check_weights_finds_a_nan(mk_bin, tmp_path):
    model = make_model("llama")
    with torch.no_grad():
        model.model.layers[1].self_attn.k_proj.weight[2, 5] = float("nan")
    model.save_pretrained(tmp_path, safe_serialization=True)
    subprocess.run([str(mk_bin), "logits", "--model", str(tmp_path), "--tokens", "1,2"], check=True,
                   capture_output=True, timeout=300)  # not checked by default
    run_error(mk_bin, "logits", "--model", tmp_path, "--tokens", "1,2", "--check-weights",
              words=("--check-weights: weight 1.qkv holds nan at index",
                     "source tensor 'model.layers.1.self_attn.k_proj.weight', element 133)"))


def test_invalid_token_ids(mk_bin, tiny):
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,320", words=("token id 320", "vocabulary of 320"))
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,-3", words=("token id -3",))
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,x", words=("--tokens: 'x' is not a token id",))


def test_prompt_file_missing(mk_bin, tmp_path):
    run_error(mk_bin, "generate", "--prompt-file", tmp_path / "none.txt", words=("none.txt", "cannot open"))


# --- Ctrl-C ---------------------------------------------------------------------------------------

class Reader:
    """Collects a pipe's bytes on a thread, so the test can wait for output without blocking."""

    def __init__(self, pipe):
        self.data = b""
        self.thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.thread.start()

    def _run(self, pipe):
        while chunk := os.read(pipe.fileno(), 4096):
            self.data += chunk

    def wait_for(self, n, timeout):
        end = time.time() + timeout
        while len(self.data) < n and time.time() < end:
            time.sleep(0.05)
        return len(self.data) >= n


def interrupt(mk_bin, args, stdin_text=None, wait_bytes=60):
    proc = subprocess.Popen([str(mk_bin), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    if stdin_text is not None:
        proc.stdin.write(stdin_text.encode())
    proc.stdin.close()
    out, err = Reader(proc.stdout), Reader(proc.stderr)
    try:
        assert out.wait_for(wait_bytes, 120), f"no output: {out.data!r} {err.data!r}"
        printed = len(out.data)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out.thread.join(5)
    err.thread.join(5)
    return code, printed, out.data.decode(errors="replace"), err.data.decode(errors="replace")


def test_ctrl_c_stops_generate(mk_bin):
    code, printed, out, err = interrupt(mk_bin, ["generate", "-n", "100000", "--ignore-eos", "--device", "cpu"])
    assert code == EXIT_INTERRUPTED, err
    assert len(out.encode()) >= printed and out.startswith("Once upon a time,") and out.endswith("\n")
    lines = err.splitlines()
    assert lines and "stop: interrupted" in lines[-1] and lines[-1].startswith("prompt: "), err
    assert "error" not in err and "Sanitizer" not in err


def test_ctrl_c_stops_chat(mk_bin):
    code, printed, out, err = interrupt(mk_bin, ["chat", "-n", "100000", "--ignore-eos", "--device", "cpu"],
                                        stdin_text="Tell me a very long story.\n", wait_bytes=30)
    assert code == EXIT_INTERRUPTED, err
    assert len(out) >= 30
    assert "stop: interrupted" in err and "error" not in err, err


def test_attention_head_blocks_must_divide_the_group(mk_bin, tiny):
    # The tiny llama's 4 query heads share 2 KV heads: groups of 2, which 3 blocks do not divide.
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--device", "cpu", "--attn-head-blocks", 3,
              words=("--attn-head-blocks 3", "2 query heads"))
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--attn-head-blocks", 257, code=EXIT_USAGE,
              words=("--attn-head-blocks",))


def test_weight_pipe_ring_of_fewer_than_two_pages(mk_bin, tiny):
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--pipe-pages", 1, code=EXIT_USAGE,
              words=("--pipe-pages", "at least 2 pages"))
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--pipe-pages", 17, code=EXIT_USAGE,
              words=("--pipe-pages",))


@pytest.mark.parametrize("value", ["17", "-1", "many", "", "123"])
def test_weight_pipe_copies_in_flight_out_of_range(mk_bin, tiny, value):
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--pipe-inflight", value, code=EXIT_USAGE,
              words=("--pipe-inflight", "auto or a number of pages, 0-16"))


@pytest.mark.parametrize("value", ["auto", "0", "16"])
def test_weight_pipe_copies_in_flight_accepted(mk_bin, tiny, value):
    # A GPU-only setting: the CPU executor takes it and ignores it.
    proc = subprocess.run([str(mk_bin), "logits", "--model", str(tiny), "--tokens", "1,2", "--device", "cpu",
                           "--pipe-inflight", value], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_model_that_does_not_split_over_the_ranks(mk_bin, tiny):
    # 4 query heads do not split 3 ways.
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--device", "cpu", "--tp", 3,
              words=("--tp 3", "4 query heads"))
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--tp", 0, code=EXIT_USAGE, words=("--tp",))


def test_nccl_between_launches_needs_gpus(mk_bin, tiny):
    # NCCL is the GPU's exchange; the CPU executor runs the same launches with --tp-comm launches.
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--device", "cpu", "--tp", 2, "--tp-comm", "nccl",
              words=("--tp-comm nccl runs on GPUs", "--tp-comm launches"))
    run_error(mk_bin, "logits", "--model", tiny, "--tokens", "1,2", "--tp", 2, "--tp-comm", "mpi", code=EXIT_USAGE,
              words=("--tp-comm",))
