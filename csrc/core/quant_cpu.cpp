#include "quant_cpu.h"

#include <algorithm>

#include "quant_math.h"

// On x86-64 with GCC each hot loop is compiled for x86-64-v4 (AVX-512), v3 (AVX2) and the baseline; the loader
// picks the best one the machine has (no -march flag, so the built library runs everywhere).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SELFOCUS_NO_CLONES)
#define SF_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SF_CPU_CLONES
#endif

namespace selfocus {
namespace core {
namespace {

using qmath::IntRange;

// Calls fn(channel, run_begin, run_end) for each stretch of [begin, end) that shares one channel.
template <typename Fn>
inline void for_each_channel_run(int64_t begin, int64_t end, ChannelLayout layout, Fn&& fn) {
  int64_t i = begin;
  while (i < end) {
    const int64_t row = i / layout.inner;
    const int64_t run_end = std::min(end, (row + 1) * layout.inner);
    fn(row % layout.channels, i, run_end);
    i = run_end;
  }
}

// Work that needs a per-element buffer (QDrop's mask, reduction terms) runs in tiles of this many elements,
// kept on the stack; tiles start at multiples of 4 relative to the element index so that each Philox call
// serves four elements.
constexpr int64_t kTile = 1024;

// Fills keep[0, count) with 1.0f (quantize) or 0.0f for elements first .. first + count - 1, first % 4 == 0.
// The Philox state of the tile's groups is kept as four arrays and each round is one loop over them: the
// same arithmetic as qmath::philox4x32_10, in a shape the compiler vectorises. keep must hold count + 3.
SF_CPU_CLONES void fill_keep_tile(float* keep, int64_t first, int64_t count, float keep_prob, uint64_t seed) {
  constexpr int64_t kGroups = kTile / 4;
  uint32_t c0[kGroups], c1[kGroups], c2[kGroups], c3[kGroups];
  const int64_t g0 = first / 4;
  const int64_t groups = (count + 3) / 4;
  for (int64_t g = 0; g < groups; ++g) {
    const uint64_t ctr = static_cast<uint64_t>(g0 + g);
    c0[g] = static_cast<uint32_t>(ctr);
    c1[g] = static_cast<uint32_t>(ctr >> 32);
    c2[g] = 0u;
    c3[g] = 0u;
  }
  uint32_t k0 = static_cast<uint32_t>(seed);
  uint32_t k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    for (int64_t g = 0; g < groups; ++g) qmath::philox_round(c0[g], c1[g], c2[g], c3[g], k0, k1);
  }
  for (int64_t g = 0; g < groups; ++g) {
    keep[4 * g + 0] = qmath::mask01(qmath::qdrop_keep_word(c0[g], keep_prob));
    keep[4 * g + 1] = qmath::mask01(qmath::qdrop_keep_word(c1[g], keep_prob));
    keep[4 * g + 2] = qmath::mask01(qmath::qdrop_keep_word(c2[g], keep_prob));
    keep[4 * g + 3] = qmath::mask01(qmath::qdrop_keep_word(c3[g], keep_prob));
  }
}

// Runs body(tile_begin, tile_end, keep) over [begin, end) with keep[] the tile's mask (all ones, without
// drawing, when keep_prob >= 1).
template <typename Body>
inline void for_each_keep_tile(int64_t begin, int64_t end, float keep_prob, uint64_t seed, Body&& body) {
  float keep[kTile + 4];
  const bool draw = keep_prob < 1.0f;
  if (!draw) std::fill(keep, keep + kTile + 4, 1.0f);
  int64_t t = begin;
  while (t < end) {
    const int64_t aligned = t - (t % 4);
    const int64_t t_end = std::min(end, aligned + kTile);
    if (draw) fill_keep_tile(keep, aligned, t_end - aligned, keep_prob, seed);
    body(t, t_end, keep + (t - aligned));
    t = t_end;
  }
}

// Sum of t[0, n) accumulated in 16 interleaved lanes, then across lanes in order: this vectorises without
// reassociating anything, so the result is the same on every instruction set.
inline double lane_sum(const float* t, int64_t n) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += t[i + j];
  double total = 0.0;
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  for (; i < n; ++i) total += t[i];
  return total;
}

SF_CPU_CLONES void fq_forward_run(const float* x, float* y, int64_t n, float s, float inv, IntRange r) {
  for (int64_t i = 0; i < n; ++i) y[i] = qmath::fake_quant_value(x[i], s, inv, r);
}

SF_CPU_CLONES void fq_backward_run(const float* g, const float* x, float* gx, int64_t n, float inv,
                                   IntRange r) {
  for (int64_t i = 0; i < n; ++i) gx[i] = qmath::fq_in_range(x[i], inv, r) ? g[i] : 0.0f;
}

SF_CPU_CLONES void ada_soft_run(const float* w, const float* v, float* y, int64_t n, float s, float inv,
                                IntRange r) {
  for (int64_t i = 0; i < n; ++i) y[i] = qmath::ada_soft_value(w[i], v[i], s, inv, r);
}

SF_CPU_CLONES void ada_soft_slope_run(const float* w, const float* v, float* y, float* slope, int64_t n, float s,
                                      float inv, IntRange r) {
  for (int64_t i = 0; i < n; ++i) y[i] = qmath::ada_soft_value_slope(w[i], v[i], s, inv, r, slope + i);
}

SF_CPU_CLONES void multiply_run(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

SF_CPU_CLONES void ada_hard_run(const float* w, const float* v, float* y, int64_t n, float s, float inv,
                                IntRange r) {
  for (int64_t i = 0; i < n; ++i) y[i] = qmath::ada_hard_value(w[i], v[i], s, inv, r);
}

SF_CPU_CLONES void ada_grad_run(const float* g, const float* w, const float* v, float* gv, int64_t n,
                                float s, float inv, IntRange r) {
  for (int64_t i = 0; i < n; ++i) gv[i] = qmath::ada_soft_grad(g[i], w[i], v[i], s, inv, r);
}

SF_CPU_CLONES double ada_reg_tile(const float* v, float beta, float* gv, int64_t n) {
  float terms[kTile];
  if (gv != nullptr) {
    for (int64_t i = 0; i < n; ++i) terms[i] = qmath::ada_reg_value_grad(v[i], beta, gv + i);
  } else {
    for (int64_t i = 0; i < n; ++i) terms[i] = qmath::ada_reg_value(v[i], beta);
  }
  return lane_sum(terms, n);
}

SF_CPU_CLONES void act_forward_run(const float* x, const float* keep, float* y, int64_t n, float s, float inv,
                                   IntRange r) {
  for (int64_t i = 0; i < n; ++i) {
    const float q = qmath::fake_quant_value(x[i], s, inv, r);
    y[i] = keep[i] != 0.0f ? q : x[i];
  }
}

SF_CPU_CLONES double act_backward_run(const float* g, const float* x, const float* keep, float* gx, int64_t n,
                                      float inv, IntRange r) {
  float terms[kTile];
  for (int64_t i = 0; i < n; ++i) {
    float dx, ds;
    qmath::lsq_grads(g[i], x[i], inv, r, &dx, &ds);
    const bool k = keep[i] != 0.0f;
    gx[i] = k ? dx : g[i];
    terms[i] = k ? ds : 0.0f;
  }
  return lane_sum(terms, n);
}

}  // namespace

void fake_quant_forward(const float* x, const float* scale, float* y, int64_t begin, int64_t end,
                        ChannelLayout layout, IntFormat fmt) {
  const IntRange r = qmath::int_range(fmt.bits, fmt.is_signed);
  for_each_channel_run(begin, end, layout, [&](int64_t c, int64_t b, int64_t e) {
    const float s = scale[c];
    fq_forward_run(x + b, y + b, e - b, s, 1.0f / s, r);
  });
}

void fake_quant_backward(const float* grad_y, const float* x, const float* scale, float* grad_x,
                         int64_t begin, int64_t end, ChannelLayout layout, IntFormat fmt) {
  const IntRange r = qmath::int_range(fmt.bits, fmt.is_signed);
  for_each_channel_run(begin, end, layout, [&](int64_t c, int64_t b, int64_t e) {
    fq_backward_run(grad_y + b, x + b, grad_x + b, e - b, 1.0f / scale[c], r);
  });
}

void adaround_forward(const float* w, const float* v, const float* scale, float* y, int64_t begin,
                      int64_t end, ChannelLayout layout, int bits, bool hard) {
  const IntRange r = qmath::int_range(bits, true);
  for_each_channel_run(begin, end, layout, [&](int64_t c, int64_t b, int64_t e) {
    const float s = scale[c];
    if (hard) {
      ada_hard_run(w + b, v + b, y + b, e - b, s, 1.0f / s, r);
    } else {
      ada_soft_run(w + b, v + b, y + b, e - b, s, 1.0f / s, r);
    }
  });
}

void adaround_forward_slope(const float* w, const float* v, const float* scale, float* y, float* slope,
                            int64_t begin, int64_t end, ChannelLayout layout, int bits) {
  const IntRange r = qmath::int_range(bits, true);
  for_each_channel_run(begin, end, layout, [&](int64_t c, int64_t b, int64_t e) {
    const float s = scale[c];
    ada_soft_slope_run(w + b, v + b, y + b, slope + b, e - b, s, 1.0f / s, r);
  });
}

void adaround_slope_backward(const float* grad_y, const float* slope, float* grad_v, int64_t begin, int64_t end) {
  multiply_run(grad_y + begin, slope + begin, grad_v + begin, end - begin);
}

void adaround_backward(const float* grad_y, const float* w, const float* v, const float* scale,
                       float* grad_v, int64_t begin, int64_t end, ChannelLayout layout, int bits) {
  const IntRange r = qmath::int_range(bits, true);
  for_each_channel_run(begin, end, layout, [&](int64_t c, int64_t b, int64_t e) {
    const float s = scale[c];
    ada_grad_run(grad_y + b, w + b, v + b, grad_v + b, e - b, s, 1.0f / s, r);
  });
}

void adaround_init(const float* w, const float* scale, float* v, int64_t begin, int64_t end,
                   ChannelLayout layout) {
  for_each_channel_run(begin, end, layout, [&](int64_t c, int64_t b, int64_t e) {
    const float inv = 1.0f / scale[c];
    for (int64_t i = b; i < e; ++i) v[i] = qmath::ada_init_value(w[i], inv);
  });
}

double adaround_regularizer(const float* v, float beta, float* grad_v, int64_t begin, int64_t end) {
  double total = 0.0;
  for (int64_t t = begin; t < end; t += kTile) {
    const int64_t n = std::min(kTile, end - t);
    total += ada_reg_tile(v + t, beta, grad_v == nullptr ? nullptr : grad_v + t, n);
  }
  return total;
}

void act_quant_forward(const float* x, float step, float* y, int64_t begin, int64_t end, IntFormat fmt,
                       float keep_prob, uint64_t seed) {
  const IntRange r = qmath::int_range(fmt.bits, fmt.is_signed);
  const float inv = 1.0f / step;
  for_each_keep_tile(begin, end, keep_prob, seed, [&](int64_t b, int64_t e, const float* keep) {
    act_forward_run(x + b, keep, y + b, e - b, step, inv, r);
  });
}

double act_quant_backward(const float* grad_y, const float* x, float step, float* grad_x, int64_t begin,
                          int64_t end, IntFormat fmt, float keep_prob, uint64_t seed) {
  const IntRange r = qmath::int_range(fmt.bits, fmt.is_signed);
  const float inv = 1.0f / step;
  double total = 0.0;
  for_each_keep_tile(begin, end, keep_prob, seed, [&](int64_t b, int64_t e, const float* keep) {
    total += act_backward_run(grad_y + b, x + b, keep, grad_x + b, e - b, inv, r);
  });
  return total;
}

void qdrop_keep_mask(uint8_t* keep, int64_t begin, int64_t end, float keep_prob, uint64_t seed) {
  for_each_keep_tile(begin, end, keep_prob, seed, [&](int64_t b, int64_t e, const float* k) {
    for (int64_t i = b; i < e; ++i) keep[i] = k[i - b] != 0.0f ? 1 : 0;
  });
}

}  // namespace core
}  // namespace selfocus
