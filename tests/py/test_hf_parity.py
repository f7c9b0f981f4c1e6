"""Our engine against HF transformers, for every architecture: tiny random-weight models built by
transformers from a config and saved with save_pretrained; fp32 logits for a 16-token prompt and 32
decode steps, and the greedy continuation, under several executor shapes and tensor-parallel splits."""
import numpy as np
import pytest
import torch
import transformers

import tiny_models

PROMPT_LEN, DECODE_STEPS = 16, 32

# Executor shapes the same program must give the same answer under: SM counts 1, 7 and 132,
# seeded random instruction order, unfused norms with one wait slot (barrier joins), chunked prefill;
# and tensor parallelism on the CPU executor (2 and 4 ranks meeting on AllReduce / ArgmaxRanks).
VARIANTS = {
    "default": [],
    "sms1": ["--sms", 1],
    "sms7": ["--sms", 7],
    "sms132": ["--sms", 132],
    # The counter waits alone (decode's waits by data off), in random order.
    "random7": ["--sms", 7, "--random-order", 3, "--no-data-waits"],
    "random132": ["--sms", 132, "--random-order", 4],
    "unfused_barriers": ["--sms", 13, "--no-fuse-norms", "--max-waits", 1, "--random-order", 5],
    "chunked_prefill": ["--sms", 9, "--prefill-chunk", 5],
    # Decode stages awaiting their input row by its tags, as the GPU does (kFlagWaitByData, on by
    # default), in random order.
    "data_waits_random": ["--sms", 11, "--random-order", 8],
    "tp2": ["--tp", 2, "--sms", 5],
    "tp4_random": ["--tp", 4, "--sms", 7, "--random-order", 6],
    # The ranks meeting between launches (a launch per all-reduce, the partials exchanged).
    "tp2_launches": ["--tp", 2, "--tp-comm", "launches", "--sms", 5],
    "tp4_launches_random": ["--tp", 4, "--tp-comm", "launches", "--sms", 7, "--random-order", 9],
}


@pytest.fixture(scope="module", params=list(tiny_models.ARCHS))
def hf_case(request, tmp_path_factory):
    arch = request.param
    folder = tmp_path_factory.mktemp(arch)
    model = tiny_models.save_model(arch, folder)
    gen = torch.Generator().manual_seed(7)
    prompt = torch.randint(0, model.config.vocab_size, (1, PROMPT_LEN), generator=gen)
    with torch.no_grad():
        out = model.generate(prompt, max_new_tokens=DECODE_STEPS, do_sample=False, min_new_tokens=DECODE_STEPS,
                             eos_token_id=None, pad_token_id=0)
        sequence = out[0]
        logits = model(sequence[None, : PROMPT_LEN + DECODE_STEPS]).logits[0].float().numpy()
    return arch, folder, sequence.tolist(), logits


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_logits_and_greedy_match_hf(hf_case, variant, run_mk, tmp_path):
    arch, folder, sequence, hf_logits = hf_case
    ids = ",".join(map(str, sequence[: PROMPT_LEN + DECODE_STEPS]))
    out = tmp_path / "logits.npy"
    # The prompt goes through prefill; the 32 further tokens (HF's greedy ones) are decode steps.
    run_mk("logits", "--model", folder, "--tokens", ids, "--prefill", PROMPT_LEN, "--out", out, *VARIANTS[variant])
    ours = np.load(out)
    assert ours.shape == hf_logits.shape
    scale = np.abs(hf_logits).max()
    diff = np.abs(ours - hf_logits).max()
    assert diff <= 1e-3 * scale, f"{arch}/{variant}: max |diff| {diff} vs max |logit| {scale}"

    # Greedy continuation computed by the program's own Argmax, from the prompt alone.
    prompt = ",".join(map(str, sequence[:PROMPT_LEN]))
    proc = run_mk("logits", "--model", folder, "--tokens", prompt, "--generate", DECODE_STEPS, *VARIANTS[variant])
    generated = [int(t) for t in proc.stdout.split("generated:")[1].split()]
    assert generated == sequence[PROMPT_LEN:PROMPT_LEN + DECODE_STEPS], f"{arch}/{variant}: greedy tokens differ"


def test_reference_forward_matches_hf(hf_case, run_mk, tmp_path):
    arch, folder, sequence, hf_logits = hf_case
    ref = tmp_path / "ref.npy"
    run_mk("logits", "--model", folder, "--tokens", ",".join(map(str, sequence[: PROMPT_LEN + DECODE_STEPS])),
           "--reference-out", ref)
    diff = np.abs(np.load(ref) - hf_logits).max()
    assert diff <= 1e-3 * np.abs(hf_logits).max(), f"{arch}: reference forward differs from HF by {diff}"


# A prompt of two token blocks (128 + 122 rows) in one prefill program: its tiles wait for their own
# block of the ops before them (not for every tile of those ops; attention for the keys of the blocks
# up to its own). Seeded random orders of the ready instructions must still give HF's logits for
# every row (seed 1 caught an LM head that waited for the first block alone), and so must the
# whole-op waits of --no-block-deps and two tensor-parallel ranks.
LONG_PROMPT = 250
BLOCK_ORDERS = {
    "random1": ["--random-order", 1],
    "random2_sms7": ["--random-order", 2, "--sms", 7],
    "whole_ops_random3": ["--no-block-deps", "--random-order", 3],
    "tp2_random4": ["--tp", 2, "--random-order", 4],  # every rank's counters by block alike
    "tp2_launches_random6": ["--tp", 2, "--tp-comm", "launches", "--random-order", 6],
    "split_k_random5": ["--no-fuse-norms", "--random-order", 5],  # down by input ranges, summed in the Norm
}


@pytest.fixture(scope="module")
def long_prompt_case(hf_case):
    arch, folder, _, _ = hf_case
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    ids = torch.randint(0, model.config.vocab_size, (1, LONG_PROMPT), generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        logits = model(ids).logits[0].float().numpy()
    return arch, folder, ids[0].tolist(), logits


@pytest.mark.parametrize("order", list(BLOCK_ORDERS))
def test_token_block_prefill_matches_hf(long_prompt_case, order, run_mk, tmp_path):
    arch, folder, ids, hf_logits = long_prompt_case
    out = tmp_path / "logits.npy"
    run_mk("logits", "--model", folder, "--tokens", ",".join(map(str, ids)), "--prefill", LONG_PROMPT,
           "--prefill-chunk", LONG_PROMPT, "--out", out, *BLOCK_ORDERS[order])
    ours = np.load(out)
    diff, scale = np.abs(ours - hf_logits).max(), np.abs(hf_logits).max()
    assert diff <= 1e-3 * scale, f"{arch}/{order}: max |diff| {diff} vs max |logit| {scale}"


def test_split_prefill_is_the_same_in_any_order(long_prompt_case, run_mk, tmp_path):
    # With unfused norms a short prompt's down projection splits by ranges of its input, and the
    # Norm after it adds the ranges' products to the residual in range order: the logits must not
    # depend on the order the tiles ran in, bit for bit (adding each range's product to the
    # residual as its tile finished made them vary).
    arch, folder, ids, _ = long_prompt_case
    runs = []
    for seed in (1, 2):
        out = tmp_path / f"logits{seed}.npy"
        run_mk("logits", "--model", folder, "--tokens", ",".join(map(str, ids)), "--prefill", LONG_PROMPT,
               "--prefill-chunk", LONG_PROMPT, "--no-fuse-norms", "--random-order", seed, "--out", out)
        runs.append(np.load(out))
    assert np.array_equal(runs[0], runs[1]), f"{arch}: the split prefill's logits depend on the order of its tiles"
