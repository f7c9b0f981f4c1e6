"""The PyTorch baseline for `mk bench`, on the same weights: a Llama-family decoder (Llama, Mistral,
Qwen2, Qwen3) in bf16 with a static KV cache, whose decode step is compiled by torch.compile
(mode="reduce-overhead": captured and replayed as a CUDA graph) with the greedy argmax on the device;
prefill of a prompt in eager mode with SDPA, and the same prefill replayed as a CUDA graph; and HF
transformers' generate as a second line.
Prints one JSON object with the rows (BENCH.md shape) on stdout."""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def rope_inv_freq(cfg, head_dim):
    rp = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = rp.get("rope_theta", cfg.get("rope_theta", 10000.0))
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    if rp.get("rope_type", rp.get("type")) == "llama3":
        old, f = rp["original_max_position_embeddings"], rp["factor"]
        lo, hi = rp["low_freq_factor"], rp["high_freq_factor"]
        wl = 2 * math.pi / inv
        smooth = (old / wl - lo) / (hi - lo)
        scaled = torch.where(wl > old / lo, inv / f, inv)
        mid = (wl <= old / lo) & (wl >= old / hi)
        inv = torch.where(mid, (1 - smooth) * inv / f + smooth * inv, scaled)
    return inv.float()


class StaticDecoder:
    """A whole decoder over plain tensors; KV cache [layers, kv_heads, max_ctx, head_dim] per k and v."""

    def __init__(self, folder, max_ctx):
        cfg = json.load(open(f"{folder}/config.json"))
        w = {}
        import glob
        for f in sorted(glob.glob(f"{folder}/*.safetensors")):
            w.update(load_file(f, device="cuda"))
        self.w = {k: v.to(torch.bfloat16) for k, v in w.items()}
        self.L, self.H = cfg["num_hidden_layers"], cfg["hidden_size"]
        self.Hq, self.Hkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
        self.D = cfg.get("head_dim") or self.H // self.Hq
        self.eps = cfg["rms_norm_eps"]
        self.max_ctx = max_ctx
        inv = rope_inv_freq(cfg, self.D)
        ang = torch.arange(max_ctx, dtype=torch.float32)[:, None] * inv[None, :]
        self.cos = torch.cat([ang.cos(), ang.cos()], -1).to("cuda", torch.bfloat16)
        self.sin = torch.cat([ang.sin(), ang.sin()], -1).to("cuda", torch.bfloat16)
        self.k = torch.zeros(self.L, self.Hkv, max_ctx, self.D, device="cuda", dtype=torch.bfloat16)
        self.v = torch.zeros_like(self.k)
        self.token = torch.zeros(1, dtype=torch.long, device="cuda")
        self.pos = torch.zeros(1, dtype=torch.long, device="cuda")
        self.lm_head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        # Fuse Q/K/V and gate/up once, as a tuned PyTorch implementation would.
        p = "model.layers.{}."
        self.qkv = [torch.cat([self.w[p.format(i) + f"self_attn.{n}_proj.weight"] for n in "qkv"]) for i in range(self.L)]
        self.qkv_b = [torch.cat([self.w[p.format(i) + f"self_attn.{n}_proj.bias"] for n in "qkv"])
                      if p.format(i) + "self_attn.q_proj.bias" in self.w else None for i in range(self.L)]
        self.gate_up = [torch.cat([self.w[p.format(i) + "mlp.gate_proj.weight"], self.w[p.format(i) + "mlp.up_proj.weight"]])
                        for i in range(self.L)]
        # Fixed addresses: the CUDA graph reads weights and writes the cache in place, with no copies.
        for t in [*self.w.values(), *self.qkv, *self.gate_up, *[b for b in self.qkv_b if b is not None],
                  self.cos, self.sin, self.k, self.v, self.token, self.pos]:
            torch._dynamo.mark_static_address(t)

    def rms(self, x, weight):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * weight

    def rotate(self, x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], -1) * sin

    def forward(self, tokens, pos):
        """tokens [T], pos [T] (int64, on the GPU) -> logits [T, vocab]; writes the KV cache."""
        T = tokens.shape[0]
        x = self.w["model.embed_tokens.weight"][tokens]
        cos, sin = self.cos[pos][:, None, :], self.sin[pos][:, None, :]
        mask = torch.arange(self.max_ctx, device="cuda")[None, :] <= pos[:, None]  # [T, max_ctx]
        for i in range(self.L):
            p = f"model.layers.{i}."
            h = self.rms(x, self.w[p + "input_layernorm.weight"])
            qkv = F.linear(h, self.qkv[i], self.qkv_b[i])
            q, k, v = qkv.split([self.Hq * self.D, self.Hkv * self.D, self.Hkv * self.D], -1)
            q, k, v = q.view(T, self.Hq, self.D), k.view(T, self.Hkv, self.D), v.view(T, self.Hkv, self.D)
            if p + "self_attn.q_norm.weight" in self.w:
                q = self.rms(q, self.w[p + "self_attn.q_norm.weight"])
                k = self.rms(k, self.w[p + "self_attn.k_norm.weight"])
            q, k = self.rotate(q, cos, sin), self.rotate(k, cos, sin)
            self.k[i].index_copy_(1, pos, k.transpose(0, 1))
            self.v[i].index_copy_(1, pos, v.transpose(0, 1))
            o = F.scaled_dot_product_attention(q.transpose(0, 1)[None], self.k[i][None], self.v[i][None],
                                               attn_mask=mask[None, None], enable_gqa=True)
            x = x + F.linear(o[0].transpose(0, 1).reshape(T, self.Hq * self.D), self.w[p + "self_attn.o_proj.weight"])
            h = self.rms(x, self.w[p + "post_attention_layernorm.weight"])
            g, u = F.linear(h, self.gate_up[i]).chunk(2, -1)
            x = x + F.linear(F.silu(g) * u, self.w[p + "mlp.down_proj.weight"])
        x = self.rms(x, self.w["model.norm.weight"])
        return F.linear(x, self.lm_head)

    def decode_step(self):
        """One greedy step on device-resident state: the token and position live in buffers."""
        logits = self.forward(self.token, self.pos)
        self.token.copy_(logits.argmax(-1))
        self.pos.add_(1)


def time_cuda(fn, reps):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--contexts", default="32,1024,4096")
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--no-hf", action="store_true")
    args = ap.parse_args()
    rows = []
    torch.manual_seed(0)
    cfg = json.load(open(f"{args.model}/config.json"))
    vocab = cfg["vocab_size"]
    for ctx in [int(c) for c in args.contexts.split(",") if c]:  # --contexts "": prefill rows only
        model = StaticDecoder(args.model, ctx + args.steps + 8)
        model.k.normal_()
        model.v.normal_()
        model.token.fill_(int(torch.randint(0, vocab, (1,))))
        # Inductor kernels from torch.compile, then the whole step captured as one CUDA graph.
        step = torch.compile(model.decode_step, fullgraph=True)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(3):
                model.pos.fill_(ctx)
                step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.no_grad():
            step()
        times = []
        for _ in range(3):
            model.pos.fill_(ctx)
            times.append(time_cuda(graph.replay, args.steps))
        ms = statistics.median(times)
        rows.append({"path": "torch_compile_graph", "context": ctx, "ms_per_token": ms, "tokens_per_s": 1000 / ms})
        del model, step, graph
        torch._dynamo.reset()
        torch.cuda.empty_cache()

    model = StaticDecoder(args.model, args.prompt + 8)
    prompt = torch.randint(0, vocab, (args.prompt,), device="cuda")
    positions = torch.arange(args.prompt, device="cuda")
    with torch.no_grad():
        # An eager forward launches hundreds of kernels from Python, and its time swung between 8.3
        # and 17.3 ms across runs on one H200 with one warm-up and 5 timings.
        for _ in range(3):
            model.forward(prompt, positions)
        ttft = statistics.median(time_cuda(lambda: model.forward(prompt, positions), 1) for _ in range(11))
    rows.append({"path": "torch_eager_prefill", "context": 0, "prompt_tokens": args.prompt, "ttft_ms": ttft})
    # The same forward captured once as a CUDA graph and replayed: the eager kernels without Python's
    # launches between them. Steadier than eager, and the stronger prefill to compare against.
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(3):
                model.forward(prompt, positions)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.no_grad():
            model.forward(prompt, positions)
        for _ in range(3):
            graph.replay()
        ttft = statistics.median(time_cuda(graph.replay, 1) for _ in range(11))
        rows.append({"path": "torch_graph_prefill", "context": 0, "prompt_tokens": args.prompt, "ttft_ms": ttft})
        del graph
    except RuntimeError as e:  # a forward that cannot be captured: the eager row stands alone
        print(f"torch_baseline: no CUDA-graph prefill ({e})", file=sys.stderr)
    del model
    torch.cuda.empty_cache()

    if not args.no_hf:
        import transformers as tf
        hf = tf.AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).to("cuda").eval()
        ids = torch.randint(0, vocab, (1, 32), device="cuda")
        gen = dict(do_sample=False, eos_token_id=None, pad_token_id=0)
        with torch.no_grad():
            hf.generate(ids, max_new_tokens=4, min_new_tokens=4, **gen)
            t = []
            for n in (1, args.steps + 1):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                hf.generate(ids, max_new_tokens=n, min_new_tokens=n, **gen)
                torch.cuda.synchronize()
                t.append(time.perf_counter() - t0)
        ms = (t[1] - t[0]) * 1000 / args.steps
        rows.append({"path": "hf_generate", "context": 32, "ms_per_token": ms, "tokens_per_s": 1000 / ms})
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
