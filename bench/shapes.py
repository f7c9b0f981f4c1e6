"""Named model shapes for benchmarks: the real models' configs, to be filled with random weights
(real weights are too big to carry to the GPU machine)."""
import transformers as tf

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
LLAMA31_ROPE = dict(LLAMA3_ROPE, factor=8.0)


def llama31(hidden, intermediate, layers, heads):
    """Llama 3.1's family (8B, 70B): 8 KV heads of 128, untied embeddings; for tensor parallelism."""
    return tf.LlamaConfig(vocab_size=128256, hidden_size=hidden, intermediate_size=intermediate,
                          num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=8, head_dim=128,
                          max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=False,
                          rope_theta=500000.0, rope_scaling=LLAMA31_ROPE)


SHAPES = {
    "llama-3.2-1b": lambda: tf.LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                                           num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                                           head_dim=64, max_position_embeddings=131072, rms_norm_eps=1e-5,
                                           tie_word_embeddings=True, rope_theta=500000.0, rope_scaling=LLAMA3_ROPE),
    "llama-3.2-3b": lambda: tf.LlamaConfig(vocab_size=128256, hidden_size=3072, intermediate_size=8192,
                                           num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8,
                                           head_dim=128, max_position_embeddings=131072, rms_norm_eps=1e-5,
                                           tie_word_embeddings=True, rope_theta=500000.0, rope_scaling=LLAMA3_ROPE),
    "qwen2.5-1.5b": lambda: tf.Qwen2Config(vocab_size=151936, hidden_size=1536, intermediate_size=8960,
                                           num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                                           max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1e6,
                                           tie_word_embeddings=True, use_sliding_window=False),
    "smollm2-135m": lambda: tf.LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                                           num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                                           max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
                                           tie_word_embeddings=True),
    "gpt2": lambda: tf.GPT2Config(vocab_size=50257, n_embd=768, n_layer=12, n_head=12, n_positions=1024),
    "llama-3.1-8b": lambda: llama31(4096, 14336, 32, 32),
    "llama-3.1-70b": lambda: llama31(8192, 28672, 80, 64),
}
