"""Engine::decode_greedy (what `mk logits --generate` and `mk bench` run; on the GPU a loop on the
device, each step's argmax feeding the next) against forward(): the tokens it generates must be the
argmax of the logits that forward() computes for the same sequence. The prompt ends just before
kSingleSplitKeys (64) positions, so the loop moves from the one-KV-split decode program to the
multi-split one midway."""
import numpy as np
import pytest
import torch

import tiny_models

PROMPT, GENERATE = 58, 20


@pytest.mark.parametrize("device", [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")),
])
def test_greedy_loop_equals_argmax_of_forward(device, run_mk, tmp_path):
    model = tiny_models.save_realistic_model("llama", tmp_path / "m")
    prompt = torch.randint(0, model.config.vocab_size, (PROMPT,), generator=torch.Generator().manual_seed(9)).tolist()
    common = ["--model", tmp_path / "m", "--device", device, "--ctx", 320]
    out = run_mk("logits", *common, "--tokens", ",".join(map(str, prompt)), "--generate", GENERATE).stdout
    line = [l for l in out.splitlines() if l.startswith("generated:")][0]
    gen = [int(t) for t in line.split(":")[1].split()]
    assert len(gen) == GENERATE
    seq = prompt + gen
    run_mk("logits", *common, "--tokens", ",".join(map(str, seq)), "--prefill", PROMPT, "--out", tmp_path / "l.npy")
    logits = np.load(tmp_path / "l.npy")
    # Row i predicts token i + 1: row PROMPT - 1 (the prefill's last) predicts gen[0].
    assert logits[PROMPT - 1:PROMPT - 1 + GENERATE].argmax(1).tolist() == gen
