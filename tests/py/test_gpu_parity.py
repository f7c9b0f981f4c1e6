"""The megakernel on the GPU against HF transformers (bf16 on CUDA) and against our CPU executor running
the same program with the same bf16 weights: per-step cosine similarity of the logits and top-1
agreement over a 32-token prompt and 128 decode steps. Skipped cleanly without a usable GPU."""
import os
import subprocess

import numpy as np
import pytest
import torch

import tiny_models

PROMPT_LEN, DECODE_STEPS = 32, 128

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def cosine_rows(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def hf_bf16_logits(model, ids):
    m = model.to(device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        return m(torch.tensor([ids], device="cuda")).logits[0].float().cpu().numpy()


def check_case(run_mk, folder, model, tmp_path, label, report):
    gen = torch.Generator().manual_seed(11)
    prompt = torch.randint(0, model.config.vocab_size, (1, PROMPT_LEN), generator=gen)
    with torch.no_grad():
        seq = model.to(device="cuda", dtype=torch.bfloat16).generate(
            prompt.cuda(), max_new_tokens=DECODE_STEPS, min_new_tokens=DECODE_STEPS, do_sample=False,
            eos_token_id=None, pad_token_id=0)[0].tolist()
    ids = seq[: PROMPT_LEN + DECODE_STEPS]
    hf = hf_bf16_logits(model, ids)
    args = ["logits", "--model", folder, "--tokens", ",".join(map(str, ids)), "--prefill", PROMPT_LEN]
    run_mk(*args, "--device", "cuda", "--out", tmp_path / "gpu.npy")
    run_mk(*args, "--device", "cpu", "--bf16-weights", "--out", tmp_path / "cpu.npy")
    gpu, cpu = np.load(tmp_path / "gpu.npy"), np.load(tmp_path / "cpu.npy")
    for name, other in (("hf_bf16", hf), ("cpu_executor", cpu)):
        cos = cosine_rows(gpu, other)
        top1 = float((gpu.argmax(1) == other.argmax(1)).mean())
        report.append(f"{label} gpu vs {name}: min cosine {cos.min():.6f}, top-1 agreement {top1:.4f}")
        assert cos.min() >= 0.999, f"{label} vs {name}: min cosine {cos.min()} at step {cos.argmin()}"
        assert top1 >= 0.99, f"{label} vs {name}: top-1 agreement {top1}"


@pytest.fixture(scope="module")
def report():
    lines = []
    yield lines
    out = os.environ.get("MK_REPORT")
    if out:
        with open(out, "a") as f:
            f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


@pytest.mark.parametrize("arch", list(tiny_models.ARCHS))
def test_tiny_models_on_gpu(arch, run_mk, tmp_path, report):
    model = tiny_models.save_model(arch, tmp_path / arch)
    check_case(run_mk, tmp_path / arch, model, tmp_path, arch, report)


def test_llama_3_2_1b_shape_on_gpu(run_mk, tmp_path, report):
    import transformers as tf
    torch.manual_seed(0)
    config = tf.LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                            num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
                            rms_norm_eps=1e-5, tie_word_embeddings=True, rope_theta=500000.0,
                            rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                            initializer_range=0.04)
    with torch.device("cuda"):
        model = tf.LlamaForCausalLM(config).to(torch.bfloat16).eval()
    model.save_pretrained(tmp_path / "llama1b")
    check_case(run_mk, tmp_path / "llama1b", model, tmp_path, "llama-3.2-1b-shape", report)
