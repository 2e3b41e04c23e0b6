#include "quant_cpu.h"

#include <algorithm>

#include "quant_math.h"

// On x86-64 with GCC/Clang each hot loop is compiled for AVX-512, AVX2 and the baseline, and the loader
// picks the best one the machine has (no -march flag, so the built library runs everywhere).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SELFOCUS_NO_CLONES)
#define SF_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
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

// Tiles of the QDrop mask: Philox words are drawn for a tile first, then the element loop reads them,
// which keeps both loops simple enough to vectorise.
constexpr int64_t kTile = 1024;

SF_CPU_CLONES void fill_keep_tile(uint8_t* keep, int64_t first, int64_t count, float keep_prob,
                                  uint64_t seed) {
  // `first` is a multiple of 4 here; the tail group may be partial.
  const int64_t g0 = first / 4;
  const int64_t groups = (count + 3) / 4;
  for (int64_t g = 0; g < groups; ++g) {
    const qmath::Philox4 r = qmath::qdrop_words(seed, g0 + g);
    for (int j = 0; j < 4; ++j) {
      const int64_t k = 4 * g + j;
      if (k < count) keep[k] = qmath::qdrop_keep_word(r.w[j], keep_prob) ? 1 : 0;
    }
  }
}

// Runs body(tile_begin, tile_end, keep) over [begin, end) in 4-aligned tiles with the keep mask filled
// (all ones when keep_prob >= 1, without drawing).
template <typename Body>
inline void for_each_keep_tile(int64_t begin, int64_t end, float keep_prob, uint64_t seed, Body&& body) {
  uint8_t keep[kTile + 4];
  const bool draw = keep_prob < 1.0f;
  if (!draw) std::fill(keep, keep + kTile + 4, uint8_t{1});
  int64_t t = begin;
  while (t < end) {
    const int64_t aligned = t - (t % 4);
    const int64_t t_end = std::min(end, aligned + kTile);
    if (draw) fill_keep_tile(keep, aligned, t_end - aligned, keep_prob, seed);
    body(t, t_end, keep + (t - aligned));
    t = t_end;
  }
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

SF_CPU_CLONES void ada_hard_run(const float* w, const float* v, float* y, int64_t n, float s, float inv,
                                IntRange r) {
  for (int64_t i = 0; i < n; ++i) y[i] = qmath::ada_hard_value(w[i], v[i], s, inv, r);
}

SF_CPU_CLONES void ada_grad_run(const float* g, const float* w, const float* v, float* gv, int64_t n,
                                float s, float inv, IntRange r) {
  for (int64_t i = 0; i < n; ++i) gv[i] = qmath::ada_soft_grad(g[i], w[i], v[i], s, inv, r);
}

SF_CPU_CLONES double ada_reg_run(const float* v, float beta, float* gv, int64_t n) {
  // Float partial sums over short stretches, accumulated in double: accurate and still vectorised.
  double total = 0.0;
  constexpr int64_t kBlock = 256;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float part = 0.0f;
    if (gv != nullptr) {
      for (int64_t i = b; i < e; ++i) part += qmath::ada_reg_term(v[i], beta, gv + i);
    } else {
      for (int64_t i = b; i < e; ++i) part += qmath::ada_reg_term(v[i], beta, nullptr);
    }
    total += part;
  }
  return total;
}

SF_CPU_CLONES void act_forward_run(const float* x, const uint8_t* keep, float* y, int64_t n, float s,
                                   float inv, IntRange r) {
  for (int64_t i = 0; i < n; ++i) {
    const float q = qmath::fake_quant_value(x[i], s, inv, r);
    y[i] = keep[i] ? q : x[i];
  }
}

SF_CPU_CLONES double act_backward_run(const float* g, const float* x, const uint8_t* keep, float* gx,
                                      int64_t n, float inv, IntRange r) {
  float part = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float dx, ds;
    qmath::lsq_grads(g[i], x[i], inv, r, &dx, &ds);
    gx[i] = keep[i] ? dx : g[i];
    part += keep[i] ? ds : 0.0f;
  }
  return part;
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
  if (end <= begin) return 0.0;
  return ada_reg_run(v + begin, beta, grad_v == nullptr ? nullptr : grad_v + begin, end - begin);
}

void act_quant_forward(const float* x, float step, float* y, int64_t begin, int64_t end, IntFormat fmt,
                       float keep_prob, uint64_t seed) {
  const IntRange r = qmath::int_range(fmt.bits, fmt.is_signed);
  const float inv = 1.0f / step;
  for_each_keep_tile(begin, end, keep_prob, seed, [&](int64_t b, int64_t e, const uint8_t* keep) {
    act_forward_run(x + b, keep, y + b, e - b, step, inv, r);
  });
}

double act_quant_backward(const float* grad_y, const float* x, float step, float* grad_x, int64_t begin,
                          int64_t end, IntFormat fmt, float keep_prob, uint64_t seed) {
  const IntRange r = qmath::int_range(fmt.bits, fmt.is_signed);
  const float inv = 1.0f / step;
  double total = 0.0;
  for_each_keep_tile(begin, end, keep_prob, seed, [&](int64_t b, int64_t e, const uint8_t* keep) {
    total += act_backward_run(grad_y + b, x + b, keep, grad_x + b, e - b, inv, r);
  });
  return total;
}

void qdrop_keep_mask(uint8_t* keep, int64_t begin, int64_t end, float keep_prob, uint64_t seed) {
  for_each_keep_tile(begin, end, keep_prob, seed, [&](int64_t b, int64_t e, const uint8_t* k) {
    std::copy(k, k + (e - b), keep + b);
  });
}

}  // namespace core
}  // namespace selfocus
