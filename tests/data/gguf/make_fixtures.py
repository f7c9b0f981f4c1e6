# Generates the GGUF test fixtures of tests/unit/test_gguf_*.cpp with the `gguf` package (the
# reference writer and numpy dequantizers), so expected values never come from our C++ code.
#
#   /work/main/.venv/bin/python tests/data/gguf/make_fixtures.py
#
# types.gguf          one small tensor "<TYPE>" per ggml type, raw random blocks with sane fp16
#                     scales, plus "<TYPE>.expected" (F32) = gguf.quants.dequantize of it.
# tiny_<arch>.gguf    a miniature llama / qwen3 / gpt2 checkpoint written the way llama.cpp's
#                     converter writes it (llama Q/K rows permuted, GPT-2 Conv1D transposed).
# tiny_<arch>.expected.gguf  the same tensors under their Hugging Face names and layouts.
# llama3_rope.gguf    metadata + rope_freqs.weight built with llama3 scaling parameters.
import math
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter
from gguf.quants import dequantize, quantize

HERE = Path(__file__).resolve().parent
rng = np.random.default_rng(1234)

# Byte offsets of the fp16 scale fields in each block (ggml-common.h block_* structs).
SCALE_OFFSETS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCK = {T.Q4_0: (32, 18), T.Q4_1: (32, 20), T.Q5_0: (32, 22), T.Q5_1: (32, 24),
         T.Q8_0: (32, 34), T.Q2_K: (256, 84), T.Q3_K: (256, 110), T.Q4_K: (256, 144),
         T.Q5_K: (256, 176), T.Q6_K: (256, 210)}


def random_blocks(qtype, rows, blocks_per_row):
    _, nbytes = BLOCK[qtype]
    raw = rng.integers(0, 256, size=(rows * blocks_per_row, nbytes), dtype=np.uint8)
    for off in SCALE_OFFSETS[qtype]:
        # Magnitudes like real checkpoints' (1e-4 .. 1e-1), both signs, as fp16 bytes.
        scale = (rng.uniform(1e-4, 0.1, size=len(raw)) * rng.choice([-1, 1], size=len(raw)))
        raw[:, off:off + 2] = scale.astype(np.float16).view(np.uint8).reshape(-1, 2)
    return raw.reshape(rows, blocks_per_row * nbytes)


def write_types():
    w = GGUFWriter(HERE / "types.gguf", "mk_types")
    specials = np.array([0.0, -0.0, np.inf, -np.inf, 6.1e-5, 3e-7, -2.5e-6, 65504.0], np.float32)
    x = rng.standard_normal((2, 16)).astype(np.float32)
    x[0, :8] = specials
    tensors = {
        "F32": (x, None),
        "F16": (x.astype(np.float16), None),
        "BF16": (quantize(x, T.BF16), T.BF16),
    }
    for qtype, (bs, _) in BLOCK.items():
        tensors[qtype.name] = (random_blocks(qtype, 2 if bs == 32 else 1, 1), qtype)
    for name, (data, raw) in tensors.items():
        w.add_tensor(name, data, raw_dtype=raw)
        expected = dequantize(data, raw) if raw is not None else data.astype(np.float32)
        w.add_tensor(name + ".expected", expected.astype(np.float32))
    finish(w)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def permute(w, n_head):  # llama.cpp's convert_hf_to_gguf.py LlamaModel.permute (HF -> GGUF)
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):  # transformers' reverse permutation (GGUF -> HF), an independent oracle
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


def f16(*shape):
    return (rng.standard_normal(shape) * 0.5).astype(np.float16)


def write_model(arch, meta, tensors):
    """tensors: gguf name -> (hf name, HF-layout array, to_gguf(array), qtype or None, to_hf)."""
    w = GGUFWriter(HERE / f"tiny_{arch}.gguf", arch)
    e = GGUFWriter(HERE / f"tiny_{arch}.expected.gguf", "mk_expected")
    for key, (kind, value) in meta.items():
        getattr(w, "add_" + kind)(f"{arch}.{key}" if not key.startswith(("tokenizer", "general")) else key, value)
    for gname, (hfname, hf, to_gguf, qtype, to_hf) in tensors.items():
        g = to_gguf(hf)
        if qtype is None:
            w.add_tensor(gname, g)
            e.add_tensor(hfname, hf)  # exact: F16 round-trips and the transforms only move values
        else:
            q = quantize(g.astype(np.float32), qtype)
            w.add_tensor(gname, q, raw_dtype=qtype)
            e.add_tensor(hfname, to_hf(dequantize(q, qtype)).astype(np.float32))
    finish(w)
    finish(e)


def ident(a):
    return a


def llama_like(arch, hidden, heads, kv_heads, head_dim, ffn, vocab, bias, qk_norm, permuted):
    meta = {
        "context_length": ("uint32", 64), "embedding_length": ("uint32", hidden),
        "block_count": ("uint32", 1), "feed_forward_length": ("uint32", ffn),
        "attention.head_count": ("uint32", heads), "attention.head_count_kv": ("uint32", kv_heads),
        "attention.layer_norm_rms_epsilon": ("float32", 1e-6), "rope.freq_base": ("float32", 50000.0),
        "attention.key_length": ("uint32", head_dim), "attention.value_length": ("uint32", head_dim),
        "tokenizer.ggml.bos_token_id": ("uint32", 1), "tokenizer.ggml.eos_token_id": ("uint32", 2),
    }
    pq = (lambda a: permute(a, heads)) if permuted else ident
    pk = (lambda a: permute(a, kv_heads)) if permuted else ident
    uq = (lambda a: unpermute(a, heads)) if permuted else ident
    L = "model.layers.0."
    t = {
        "token_embd.weight": ("model.embed_tokens.weight", f16(vocab, hidden), ident, None, ident),
        "output_norm.weight": ("model.norm.weight", f16(hidden), ident, None, ident),
        "output.weight": ("lm_head.weight", f16(vocab, hidden), ident, T.Q8_0, ident),
        "blk.0.attn_norm.weight": (L + "input_layernorm.weight", f16(hidden), ident, None, ident),
        "blk.0.attn_q.weight": (L + "self_attn.q_proj.weight", f16(heads * head_dim, hidden), pq, T.Q8_0, uq),
        "blk.0.attn_k.weight": (L + "self_attn.k_proj.weight", f16(kv_heads * head_dim, hidden), pk, None, ident),
        "blk.0.attn_v.weight": (L + "self_attn.v_proj.weight", f16(kv_heads * head_dim, hidden), ident, None, ident),
        "blk.0.attn_output.weight": (L + "self_attn.o_proj.weight", f16(hidden, heads * head_dim), ident, None, ident),
        "blk.0.ffn_norm.weight": (L + "post_attention_layernorm.weight", f16(hidden), ident, None, ident),
        "blk.0.ffn_gate.weight": (L + "mlp.gate_proj.weight", f16(ffn, hidden), ident, None, ident),
        "blk.0.ffn_up.weight": (L + "mlp.up_proj.weight", f16(ffn, hidden), ident, T.Q4_0, ident),
        "blk.0.ffn_down.weight": (L + "mlp.down_proj.weight", f16(hidden, ffn), ident, None, ident),
    }
    if bias:
        t["blk.0.attn_q.bias"] = (L + "self_attn.q_proj.bias", f16(heads * head_dim), pq, None, ident)
        t["blk.0.attn_k.bias"] = (L + "self_attn.k_proj.bias", f16(kv_heads * head_dim), pk, None, ident)
        t["blk.0.attn_v.bias"] = (L + "self_attn.v_proj.bias", f16(kv_heads * head_dim), ident, None, ident)
    if qk_norm:
        t["blk.0.attn_q_norm.weight"] = (L + "self_attn.q_norm.weight", f16(head_dim), ident, None, ident)
        t["blk.0.attn_k_norm.weight"] = (L + "self_attn.k_norm.weight", f16(head_dim), ident, None, ident)
    write_model(arch, meta, t)


def write_gpt2(hidden=32, heads=2, ffn=16, vocab=8, ctx=4):
    meta = {
        "context_length": ("uint32", ctx), "embedding_length": ("uint32", hidden),
        "block_count": ("uint32", 1), "feed_forward_length": ("uint32", ffn),
        "attention.head_count": ("uint32", heads), "attention.layer_norm_epsilon": ("float32", 1e-5),
        "tokenizer.ggml.bos_token_id": ("uint32", 7), "tokenizer.ggml.eos_token_id": ("uint32", 7),
    }
    tr = lambda a: np.ascontiguousarray(a.T)  # HF Conv1D [in, out] -> GGUF [out, in]
    H = "transformer.h.0."
    t = {
        "token_embd.weight": ("transformer.wte.weight", f16(vocab, hidden), ident, None, ident),
        "position_embd.weight": ("transformer.wpe.weight", f16(ctx, hidden), ident, None, ident),
        "blk.0.attn_norm.weight": (H + "ln_1.weight", f16(hidden), ident, None, ident),
        "blk.0.attn_norm.bias": (H + "ln_1.bias", f16(hidden), ident, None, ident),
        "blk.0.attn_qkv.weight": (H + "attn.c_attn.weight", f16(hidden, 3 * hidden), tr, None, ident),
        "blk.0.attn_qkv.bias": (H + "attn.c_attn.bias", f16(3 * hidden), ident, None, ident),
        "blk.0.attn_output.weight": (H + "attn.c_proj.weight", f16(hidden, hidden), tr, T.Q8_0, tr),
        "blk.0.attn_output.bias": (H + "attn.c_proj.bias", f16(hidden), ident, None, ident),
        "blk.0.ffn_norm.weight": (H + "ln_2.weight", f16(hidden), ident, None, ident),
        "blk.0.ffn_norm.bias": (H + "ln_2.bias", f16(hidden), ident, None, ident),
        "blk.0.ffn_up.weight": (H + "mlp.c_fc.weight", f16(hidden, ffn), tr, None, ident),
        "blk.0.ffn_up.bias": (H + "mlp.c_fc.bias", f16(ffn), ident, None, ident),
        "blk.0.ffn_down.weight": (H + "mlp.c_proj.weight", f16(ffn, hidden), tr, None, ident),
        "blk.0.ffn_down.bias": (H + "mlp.c_proj.bias", f16(hidden), ident, None, ident),
        "output_norm.weight": ("transformer.ln_f.weight", f16(hidden), ident, None, ident),
        "output_norm.bias": ("transformer.ln_f.bias", f16(hidden), ident, None, ident),
    }
    write_model("gpt2", meta, t)


def llama3_factors(head_dim, base, factor, lo, hi, ctx):  # the converter's rope_freqs formula
    out = []
    for i in range(0, head_dim, 2):
        wavelen = 2 * math.pi / (1.0 / base ** (i / head_dim))
        if wavelen < ctx / hi:
            out.append(1.0)
        elif wavelen > ctx / lo:
            out.append(factor)
        else:
            s = (ctx / wavelen - lo) / (hi - lo)
            out.append(1 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


def write_llama3_rope():
    # Non-default parameters (factor 16, high 2, context 2048) so that they must be recovered
    # from the factors rather than assumed.
    w = GGUFWriter(HERE / "llama3_rope.gguf", "llama")
    for k, v in [("context_length", 4096), ("embedding_length", 32), ("block_count", 1),
                 ("feed_forward_length", 32), ("attention.head_count", 1),
                 ("attention.key_length", 64)]:
        w.add_uint32("llama." + k, v)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_float32("llama.rope.freq_base", 500000.0)
    w.add_tensor("token_embd.weight", f16(4, 32))
    w.add_tensor("rope_freqs.weight", llama3_factors(64, 500000.0, 16.0, 1.0, 2.0, 2048))
    finish(w)


if __name__ == "__main__":
    write_types()
    llama_like("llama", hidden=32, heads=4, kv_heads=2, head_dim=8, ffn=16, vocab=8,
               bias=True, qk_norm=False, permuted=True)
    llama_like("qwen3", hidden=32, heads=4, kv_heads=2, head_dim=4, ffn=16, vocab=8,
               bias=False, qk_norm=True, permuted=False)
    write_gpt2()
    write_llama3_rope()
    for p in sorted(HERE.glob("*.gguf")):
        print(f"{p.name}: {p.stat().st_size} bytes")
