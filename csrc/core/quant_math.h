// Element-level math of the fused quantization operators, written once for the CPU loops (csrc/core) and
// the CUDA kernels (csrc/cuda). Every function is a pure function of its arguments, so the two paths agree
// bit for bit wherever they use the same instructions (rounding, clamping, products), and within a few
// ulps where the device uses its own expf/logf.
//
// Conventions (docs/ops.md has the full specification):
//   * x / s is computed as x * (1/s) with the reciprocal rounded to float32 first, as PyTorch's
//     fake-quant kernels do, so that 8-bit results equal torch.fake_quantize_* element for element.
//   * Rounding is half to even (nearbyint in the default rounding mode).
//   * Range checks use the rounded value, with inclusive bounds (the straight-through estimator of
//     PyTorch's fake quant and of torch.clamp's backward).
//   * Host code must be compiled with -ffp-contract=off: a fused multiply-add of x*inv and the rounding
//     constant would round the exact product instead of the float32 product.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define SF_HD __host__ __device__ __forceinline__
#else
#define SF_HD inline __attribute__((always_inline))
#endif

namespace selfocus {
namespace qmath {

// AdaRound's rectified sigmoid stretch (Nagel et al. 2020).
constexpr float kZeta = 1.1f;
constexpr float kGamma = -0.1f;
constexpr float kStretch = 1.2f;  // kZeta - kGamma

struct IntRange {
  float lo;
  float hi;
};

SF_HD IntRange int_range(int bits, bool is_signed) {
  return is_signed ? IntRange{-static_cast<float>(1 << (bits - 1)), static_cast<float>((1 << (bits - 1)) - 1)}
                   : IntRange{0.0f, static_cast<float>((1 << bits) - 1)};
}

SF_HD float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// 1.0f or 0.0f. Derivative masks are products of these rather than chains of && or nested selects, a
// form GCC's vectoriser accepts (it rejects the mixed-width boolean masks the other forms produce).
SF_HD float mask01(bool c) { return c ? 1.0f : 0.0f; }

SF_HD float as_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

SF_HD uint32_t as_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

// Round half to even. On the host it uses the 1.5*2^23 trick, which the compiler vectorises on any x86
// level (nearbyint needs SSE4.1); it is exact for |v| <= 2^22, and callers clamp to the integer range first.
SF_HD float rint_small(float v) {
#if defined(__CUDA_ARCH__)
  return rintf(v);
#else
  const float magic = 12582912.0f;
  return (v + magic) - magic;
#endif
}

// floor for |v| <= 2^22 (same contract as rint_small).
SF_HD float floor_small(float v) {
#if defined(__CUDA_ARCH__)
  return floorf(v);
#else
  const float r = rint_small(v);
  return r > v ? r - 1.0f : r;
#endif
}

// exp(x) to about 2 ulp; inputs are clamped to the normal range (so exp never overflows to inf).
// A polynomial rather than libm's expf so that the host loops vectorise.
SF_HD float exp_approx(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  const float in = x;
  // NaN is computed as 0 and given back at the end (its conversion to int would be undefined).
  x = clampf(x == x ? x : 0.0f, -87.33654f, 88.37626f);
  const float n = rint_small(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t e = static_cast<int32_t>(n) + 127;
  return in == in ? p * as_float(static_cast<uint32_t>(e) << 23) : in;
#endif
}

// log(x) for finite x > 0, to about 2 ulp (vectorisable on the host for the same reason as exp_approx).
SF_HD float log_approx(float x) {
#if defined(__CUDA_ARCH__)
  return logf(x);
#else
  // Subnormals are normalised by scaling with 2^23 first (selects, not branches: the loops vectorise).
  const bool sub = as_bits(x) < 0x00800000u;
  const uint32_t bits = as_bits(sub ? x * 8388608.0f : x);
  float e = static_cast<float>(static_cast<int32_t>(bits >> 23) - 127) - (sub ? 23.0f : 0.0f);
  float m = as_float((bits & 0x007fffffu) | 0x3f800000u);  // mantissa in [1, 2)
  // Move m to [sqrt(1/2), sqrt(2)) so the polynomial argument stays small.
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1.0f : e;
  const float f = m - 1.0f;
  const float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z;
  y = y + e * -2.12194440e-4f;
  y = y - 0.5f * z;
  return f + y + e * 0.693359375f;
#endif
}

SF_HD float sigmoid(float v) { return 1.0f / (1.0f + exp_approx(-v)); }

// ---------------------------------------------------------------------------------------------------
// Round-to-nearest fake quantization (per tensor or per channel: the caller picks s and inv = 1/s).

SF_HD float fq_level(float x, float inv, IntRange r) {
  // Clamping to one level beyond the range before rounding keeps rint_small exact and does not change
  // which side of the range the rounded value falls on.
  return rint_small(clampf(x * inv, r.lo - 1.0f, r.hi + 1.0f));
}

SF_HD float fake_quant_value(float x, float s, float inv, IntRange r) {
  return clampf(fq_level(x, inv, r), r.lo, r.hi) * s;
}

SF_HD bool fq_in_range(float x, float inv, IntRange r) {
  const float q = fq_level(x, inv, r);
  return q >= r.lo && q <= r.hi;
}

// ---------------------------------------------------------------------------------------------------
// AdaRound (per output channel).

SF_HD float ada_floor(float w, float inv, IntRange r) {
  // floor(w/s) + h with h in [0, 1] is clamped to [lo, hi]; clamping w/s to [lo-2, hi+1] first keeps
  // both that result and its in-range test unchanged.
  return floor_small(clampf(w * inv, r.lo - 2.0f, r.hi + 1.0f));
}

SF_HD float ada_soft_value(float w, float v, float s, float inv, IntRange r) {
  const float h = clampf(sigmoid(v) * kStretch + kGamma, 0.0f, 1.0f);
  return clampf(ada_floor(w, inv, r) + h, r.lo, r.hi) * s;
}

SF_HD float ada_hard_value(float w, float v, float s, float inv, IntRange r) {
  const float up = v >= 0.0f ? 1.0f : 0.0f;
  return clampf(ada_floor(w, inv, r) + up, r.lo, r.hi) * s;
}

// The soft value and its slope d(soft value)/dv from one sigmoid: the slope is zero where h or the
// rounded value is clamped.
SF_HD float ada_soft_value_slope(float w, float v, float s, float inv, IntRange r, float* slope) {
  const float sg = sigmoid(v);
  const float pre = sg * kStretch + kGamma;
  const float h = clampf(pre, 0.0f, 1.0f);
  const float u = ada_floor(w, inv, r) + h;
  const float pass = mask01(pre >= 0.0f) * mask01(pre <= 1.0f) * mask01(u >= r.lo) * mask01(u <= r.hi);
  *slope = s * kStretch * (sg * (1.0f - sg)) * pass;
  return clampf(u, r.lo, r.hi) * s;
}

// d(soft value)/dv times the incoming gradient g.
SF_HD float ada_soft_grad(float g, float w, float v, float s, float inv, IntRange r) {
  float slope;
  ada_soft_value_slope(w, v, s, inv, r, &slope);
  return g * slope;
}

// The V for which h(V) equals the fractional part of w/s (not clamped: init is done once, off the hot path).
SF_HD float ada_init_value(float w, float inv) {
  const float t = w * inv;
  const float rest = t - floorf(t);
  return -logf(kStretch / (rest - kGamma) - 1.0f);
}

// One term of the rounding regulariser, 1 - |2h(v) - 1|^beta.
SF_HD float ada_reg_value(float v, float beta) {
  const float a = 2.0f * clampf(sigmoid(v) * kStretch + kGamma, 0.0f, 1.0f) - 1.0f;
  const float m = fabsf(a);
  // The power is computed unconditionally (on 1 where m is 0 or NaN) and then selected; m * 0 keeps a NaN v NaN.
  const float mp = exp_approx(beta * log_approx(m > 0.0f ? m : 1.0f));
  return 1.0f - (m > 0.0f ? mp : m * 0.0f);
}

// ada_reg_value and its derivative in v (written to *grad), sharing the transcendental work.
SF_HD float ada_reg_value_grad(float v, float beta, float* grad) {
  const float sg = sigmoid(v);
  const float pre = sg * kStretch + kGamma;
  const float a = 2.0f * clampf(pre, 0.0f, 1.0f) - 1.0f;
  const float m = fabsf(a);
  const bool nonzero = m > 0.0f;
  const float mp = nonzero ? exp_approx(beta * log_approx(nonzero ? m : 1.0f)) : m * 0.0f;  // |a|^beta, NaN stays NaN
  const float dh = kStretch * (sg * (1.0f - sg)) * (mask01(pre >= 0.0f) * mask01(pre <= 1.0f));
  // d|a|^beta/da = beta |a|^(beta-1) sign(a) = beta (|a|^beta / |a|) sign(a), taken as 0 at a = 0.
  const float sgn = a > 0.0f ? 1.0f : -1.0f;
  *grad = nonzero ? -beta * (mp / (nonzero ? m : 1.0f)) * sgn * 2.0f * dh : mp;
  return 1.0f - mp;
}

// ---------------------------------------------------------------------------------------------------
// LSQ activation quantization with a learnable step.

// Gradient contributions of one element: dx, and the step-gradient term before grad_scale
// (q - x/s inside the range, the saturated level outside; LSQ, Esser et al. 2020).
SF_HD void lsq_grads(float g, float x, float inv, IntRange r, float* dx, float* dstep) {
  const float t = x * inv;
  const float q = rint_small(clampf(t, r.lo - 1.0f, r.hi + 1.0f));
  const bool below = q < r.lo;
  const bool above = q > r.hi;
  *dx = (below | above) ? 0.0f : g;
  *dstep = g * (below ? r.lo : (above ? r.hi : q - t));
}

// ---------------------------------------------------------------------------------------------------
// QDrop's element-wise keep decision: Philox4x32-10 (Salmon et al. 2011) keyed by the 64-bit seed, counter
// = element index / 4; element i uses output word i % 4. The element is quantized when
// (word >> 8) * 2^-24 < keep_prob, so keep_prob = 1 always quantizes and 0 never does.

struct Philox4 {
  uint32_t w[4];
};

SF_HD uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

SF_HD void philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
  uint32_t hi0, hi1;
  const uint32_t lo0 = mulhilo32(0xD2511F53u, c0, &hi0);
  const uint32_t lo1 = mulhilo32(0xCD9E8D57u, c2, &hi1);
  const uint32_t n0 = hi1 ^ c1 ^ k0;
  const uint32_t n2 = hi0 ^ c3 ^ k1;
  c0 = n0;
  c1 = lo1;
  c2 = n2;
  c3 = lo0;
}

SF_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  // Ten rounds, the key bumped by the Weyl constants before each round after the first; written out with
  // a fixed trip count so that the compiler unrolls it (and vectorises loops over counters).
  philox_round(c0, c1, c2, c3, k0, k1);
#if defined(__CUDACC__)
#pragma unroll
#else
#pragma GCC unroll 9
#endif
  for (int round = 1; round < 10; ++round) {
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
    philox_round(c0, c1, c2, c3, k0, k1);
  }
  return Philox4{{c0, c1, c2, c3}};
}

SF_HD Philox4 qdrop_words(uint64_t seed, int64_t group) {
  const uint64_t g = static_cast<uint64_t>(group);
  return philox4x32_10(static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32), 0u, 0u,
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

SF_HD bool qdrop_keep_word(uint32_t word, float keep_prob) {
  return static_cast<float>(word >> 8) * 5.9604644775390625e-08f < keep_prob;
}

}  // namespace qmath
}  // namespace selfocus
