// Numeric kernels of the CPU executor. dot() is cloned for AVX-512 and AVX2 and picked at run
// time (never AMX: it faults in our VMs); everything accumulates in fp32 like the GPU path.
#include <cmath>

#include "cpu/ops/context.h"
#include "model/tensor_source.h"

namespace mk::cpu {

__attribute__((target_clones("avx512f", "avx2", "default")))
float dot(const float* a, const float* b, size_t n) {
  // Sixteen independent partial sums let the compiler keep several vector FMAs in flight.
  float acc[16] = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += a[i + k] * b[i + k];
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int k = 0; k < 16; ++k) s += acc[k];
  return s;
}

void normalize(const float* x, float* out, size_t n, NormKind kind, float eps, const float* w, const float* b) {
  if (kind == NormKind::Rms) {
    double ss = 0;
    for (size_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
    const float inv = 1.0f / std::sqrt(float(ss / n) + eps);
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * inv * (w ? w[i] : 1.0f);
  } else {
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; ++i) mean += x[i];
    mean /= n;
    for (size_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const float inv = 1.0f / std::sqrt(float(var / n) + eps);
    for (size_t i = 0; i < n; ++i)
      out[i] = float(x[i] - mean) * inv * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
  }
}

float activate(float x, Activation act) {
  if (act == Activation::Silu) return x / (1.0f + std::exp(-x));
  const float k = 0.7978845608028654f;  // sqrt(2/pi): the tanh approximation GPT-2 uses
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

void apply_rope(float* v, const float* row, size_t D, size_t pairs) {
  const size_t half = D / 2;
  for (size_t i = 0; i < pairs; ++i) {
    const float c = row[i], s = row[half + i];
    const float a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
  }
}

void store_act(const OpContext& ctx, uint32_t buf, size_t i, float v, bool bf16) {
  if (bf16)
    reinterpret_cast<uint16_t*>(ctx.arena + buf)[i] = f32_to_bf16(v);
  else
    ctx.arena[buf + i] = v;
}

const float* input_rows(const OpContext& ctx, uint32_t in, InNorm norm, uint32_t row0, uint32_t rows,
                        uint32_t dim, bool bf16, std::vector<float>& scratch) {
  const size_t n = size_t(rows) * dim;
  const float* src = ctx.arena + in + size_t(row0) * dim;
  if (bf16) {
    // Widened into the scratch; a norm (if any) then works in place there.
    const uint16_t* b = reinterpret_cast<const uint16_t*>(ctx.arena + in) + size_t(row0) * dim;
    scratch.resize(n);
    for (size_t i = 0; i < n; ++i) scratch[i] = bf16_to_f32(b[i]);
    src = scratch.data();
  }
  if (norm.weight == kNone) return src;
  scratch.resize(n);
  for (uint32_t m = 0; m < rows; ++m)
    normalize(src + size_t(m) * dim, scratch.data() + size_t(m) * dim, dim,
              static_cast<NormKind>(ctx.dims->norm_kind), ctx.dims->norm_eps, ctx.weight(norm.weight),
              ctx.weight(norm.bias));
  return scratch.data();
}

void run_instruction(const Instruction& ins, const OpContext& ctx) {
  switch (static_cast<Opcode>(ins.opcode)) {
    case Opcode::Barrier: return;
    case Opcode::Embed: return run_embed(ins, ctx);
    case Opcode::Norm: return run_norm(ins, ctx);
    case Opcode::QkvRope: return run_qkv_rope(ins, ctx);
    case Opcode::AttnPartial: return run_attn_partial(ins, ctx);
    case Opcode::AttnReduce: return run_attn_reduce(ins, ctx);
    case Opcode::MatvecResidual:
    case Opcode::MatvecAct:
    case Opcode::LmHead: return run_matvec(ins, ctx);
    case Opcode::Argmax: return run_argmax(ins, ctx);
    case Opcode::AllReduce: return run_all_reduce(ins, ctx);
    case Opcode::ArgmaxRanks: return run_argmax_ranks(ins, ctx);
    case Opcode::Count: break;
  }
  __builtin_trap();  // the scheduler only emits known opcodes
}

}  // namespace mk::cpu
