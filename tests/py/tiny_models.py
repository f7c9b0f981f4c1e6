"""Tiny random-weight models of every supported architecture, built by HF transformers from a config
and saved with save_pretrained: the ground truth our engine is compared against."""
import torch
import transformers as tf

# Small but not degenerate: GQA (4 query heads over 2 KV heads), several layers, vocab > hidden.
COMMON = dict(vocab_size=320, hidden_size=64, intermediate_size=160, num_hidden_layers=3,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)

ARCHS = {
    "llama": lambda: tf.LlamaConfig(**COMMON, rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                    "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 32}, rope_theta=10000.0,
                                    tie_word_embeddings=True),
    "mistral": lambda: tf.MistralConfig(**COMMON, sliding_window=12, tie_word_embeddings=False),
    "qwen2": lambda: tf.Qwen2Config(**COMMON, tie_word_embeddings=False, use_sliding_window=False),
    # Qwen2.5-1.5B's GQA groups of 6 query heads (here 12 over 2 KV heads, head_dim 16): a prefill
    # attention unit takes 3 of them (head blocks), where groups of 2 or 4 stay whole.
    "qwen2_wide": lambda: tf.Qwen2Config(**{**COMMON, "hidden_size": 192, "num_attention_heads": 12},
                                         tie_word_embeddings=True, use_sliding_window=False),
    # Qwen2.5's head_dim 128 (4 query heads over 2 KV heads): the GPU's tensor-core prefill attention
    # for 128-wide heads (attn_partial_mma<128>), which the other tiny models' heads never reach.
    "qwen2_d128": lambda: tf.Qwen2Config(**{**COMMON, "hidden_size": 512}, tie_word_embeddings=False,
                                         use_sliding_window=False),
    "qwen3": lambda: tf.Qwen3Config(**COMMON, head_dim=24, tie_word_embeddings=True, use_sliding_window=False),
    "gpt2": lambda: tf.GPT2Config(vocab_size=320, n_embd=64, n_layer=3, n_head=4, n_positions=256,
                                  activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
}

# Qwen2.5-1.5B's widths against the GPU's weight pipe (pages of 1024 columns): K = 1536 is a page of
# 1024 columns and a short one of 512 (QKV, o_proj, gate/up, the LM head), down's K = 2560 a pair of
# pages and a short third. The models above are all narrower than one page. Not in ARCHS: no CPU
# test needs such widths (36M parameters); build it with config=PAGE_WIDTHS() and arch "qwen2".
PAGE_WIDTHS = lambda: tf.Qwen2Config(vocab_size=1024, hidden_size=1536, intermediate_size=2560, num_hidden_layers=2,
                                     num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=256,
                                     tie_word_embeddings=True, use_sliding_window=False)

MODEL_CLASS = {"llama": tf.LlamaForCausalLM, "mistral": tf.MistralForCausalLM, "qwen2": tf.Qwen2ForCausalLM,
               "qwen2_wide": tf.Qwen2ForCausalLM, "qwen2_d128": tf.Qwen2ForCausalLM,
               "qwen3": tf.Qwen3ForCausalLM, "gpt2": tf.GPT2LMHeadModel}


def make_model(arch: str, seed: int = 0, init: float = 0.25, head_gain: float = 1.0, config=None):
    """A random model whose weights are large enough that its logits are not near-uniform.
    head_gain scales the final norm, which spreads the logits without making the layers chaotic.
    config: another config of the architecture's class than ARCHS[arch]'s."""
    torch.manual_seed(seed)
    config = config or ARCHS[arch]()
    config.initializer_range = init
    model = MODEL_CLASS[arch](config).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name or ".ln_" in name:
                p.copy_(torch.randn_like(p) * 0.1 + (1.0 if p.dim() == 1 and "bias" not in name else 0.0))
            if name in ("model.norm.weight", "transformer.ln_f.weight"):
                p.mul_(head_gain)
    return model


def save_model(arch: str, folder, seed: int = 0, init: float = 0.25, head_gain: float = 1.0, config=None):
    model = make_model(arch, seed, init, head_gain, config)
    model.save_pretrained(folder, safe_serialization=True)
    return model


def save_realistic_model(arch: str, folder, seed: int = 0, config=None):
    """Weights at a realistic scale for the GPU's bf16 comparisons: about 1/sqrt(hidden), at most 0.1,
    with the final norm's gain of 4 spreading the logits. Larger weights make a wide model chaotic:
    at 0.1, qwen2_d128 (hidden 512) amplifies rounding so much that the CPU executor's own fp32 and
    bf16 runs part to cosine 0.98 on one prompt row (0.99995 at 1/sqrt(512))."""
    config = config or ARCHS[arch]()
    return save_model(arch, folder, seed, init=min(0.1, config.hidden_size ** -0.5), head_gain=4.0, config=config)
