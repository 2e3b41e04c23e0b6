// Tests of the torch-free quantization core: the shared element math and the CPU loops.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "../quant_cpu.h"
#include "../quant_math.h"
#include "check.h"

using namespace selfocus;

static void test_philox_known_answers() {
  // Known-answer vectors of Philox4x32-10 published with Random123.
  auto a = qmath::philox4x32_10(0, 0, 0, 0, 0, 0);
  CHECK_EQ(a.w[0], 0x6627e8d5u);
  CHECK_EQ(a.w[1], 0xe169c58du);
  CHECK_EQ(a.w[2], 0xbc57ac4cu);
  CHECK_EQ(a.w[3], 0x9b00dbd8u);
  auto b = qmath::philox4x32_10(~0u, ~0u, ~0u, ~0u, ~0u, ~0u);
  CHECK_EQ(b.w[0], 0x408f276du);
  CHECK_EQ(b.w[1], 0x41c83b0eu);
  CHECK_EQ(b.w[2], 0xa20bc7c6u);
  CHECK_EQ(b.w[3], 0x6d5451fdu);
  auto c = qmath::philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  CHECK_EQ(c.w[0], 0xd16cfe09u);
  CHECK_EQ(c.w[1], 0x94fdccebu);
  CHECK_EQ(c.w[2], 0x5001e420u);
  CHECK_EQ(c.w[3], 0x24126ea1u);
}

static void test_rounding_matches_nearbyint() {
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> dist(-300.0f, 300.0f);
  for (int i = 0; i < 200000; ++i) {
    float v = dist(gen);
    if (i % 4 == 0) v = std::round(v) + 0.5f;  // exact halves: ties go to even
    CHECK_EQ(qmath::rint_small(v), std::nearbyint(v));
    CHECK_EQ(qmath::floor_small(v), std::floor(v));
  }
  CHECK_EQ(qmath::rint_small(2.5f), 2.0f);
  CHECK_EQ(qmath::rint_small(-2.5f), -2.0f);
  CHECK_EQ(qmath::rint_small(3.5f), 4.0f);
}

static void test_exp_log_accuracy() {
  std::mt19937 gen(2);
  std::uniform_real_distribution<float> dist(-80.0f, 80.0f);
  for (int i = 0; i < 100000; ++i) {
    const float x = dist(gen);
    const double ref = std::exp(static_cast<double>(x));
    CHECK_NEAR_REL(qmath::exp_approx(x), ref, 4e-7);
  }
  std::uniform_real_distribution<float> pos(1e-30f, 1.0f);
  for (int i = 0; i < 100000; ++i) {
    const float x = i % 2 ? pos(gen) : std::ldexp(pos(gen), -(i % 120));
    const double ref = std::log(static_cast<double>(x));
    CHECK_NEAR(qmath::log_approx(x), ref, 4e-7 * std::fabs(ref) + 1e-7);
  }
  CHECK_NEAR(qmath::log_approx(1e-40f), std::log(1e-40), 1e-5);  // subnormal input
}

static void test_fake_quant_loop() {
  const float scale[2] = {0.5f, 0.25f};
  // [outer=1, channels=2, inner=3]
  const float x[6] = {0.3f, -70.0f, 1.25f, 0.125f, 40.0f, -0.375f};
  float y[6];
  core::fake_quant_forward(x, scale, y, 0, 6, {2, 3}, {8, true});
  CHECK_EQ(y[0], 0.5f);      // 0.6 -> 1
  CHECK_EQ(y[1], -64.0f);    // -140 -> -128
  CHECK_EQ(y[2], 1.0f);      // 2.5 -> 2 (ties to even)
  CHECK_EQ(y[3], 0.0f);      // 0.5 -> 0
  CHECK_EQ(y[4], 31.75f);    // 160 -> 127
  CHECK_EQ(y[5], -0.5f);     // -1.5 -> -2
  const float g[6] = {1, 1, 1, 1, 1, 1};
  float gx[6];
  core::fake_quant_backward(g, x, scale, gx, 0, 6, {2, 3}, {8, true});
  CHECK_EQ(gx[1], 0.0f);
  CHECK_EQ(gx[4], 0.0f);
  CHECK_EQ(gx[0] + gx[2] + gx[3] + gx[5], 4.0f);
}

static void test_adaround_init_roundtrip() {
  std::mt19937 gen(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int n = 4096;
  std::vector<float> w(n), v(n), y(n);
  for (auto& e : w) e = dist(gen);
  const float scale[1] = {0.02f};
  core::adaround_init(w.data(), scale, v.data(), 0, n, {1, n});
  core::adaround_forward(w.data(), v.data(), scale, y.data(), 0, n, {1, n}, 8, false);
  for (int i = 0; i < n; ++i) {
    const float lim = 127 * 0.02f;
    const float expect = std::fmin(std::fmax(w[i], -128 * 0.02f), lim);
    CHECK_NEAR(y[i], expect, 2e-5);
  }
}

static void test_regularizer_gradient() {
  // Central differences of the regulariser agree with its analytic gradient away from the kinks.
  const float vs[5] = {-1.5f, -0.3f, 0.2f, 0.9f, 1.7f};
  for (float beta : {2.0f, 7.5f, 20.0f}) {
    for (float v : vs) {
      float g;
      qmath::ada_reg_value_grad(v, beta, &g);
      const float eps = 1e-3f;
      const double num = (static_cast<double>(qmath::ada_reg_value(v + eps, beta)) -
                          qmath::ada_reg_value(v - eps, beta)) / (2 * eps);
      CHECK_NEAR(g, num, 2e-3 * (1 + std::fabs(num)));
    }
  }
}

static void test_qdrop_mask_split_invariance() {
  const int64_t n = 10007;
  std::vector<uint8_t> whole(n), parts(n);
  core::qdrop_keep_mask(whole.data(), 0, n, 0.3f, 42);
  core::qdrop_keep_mask(parts.data(), 0, 333, 0.3f, 42);
  core::qdrop_keep_mask(parts.data(), 333, 5001, 0.3f, 42);
  core::qdrop_keep_mask(parts.data(), 5001, n, 0.3f, 42);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    CHECK_EQ(whole[i], parts[i]);
    kept += whole[i];
  }
  const double frac = static_cast<double>(kept) / n;
  CHECK_NEAR(frac, 0.3, 0.02);
}

static void test_qdrop_mask_equals_direct_philox() {
  // The CPU loops draw Philox for a whole tile at once; each element must still get word i % 4 of the
  // call with counter i / 4.
  const int64_t n = 5000;
  std::vector<uint8_t> keep(n);
  const uint64_t seed = 0x123456789abcdefull;
  core::qdrop_keep_mask(keep.data(), 0, n, 0.5f, seed);
  for (int64_t i = 0; i < n; ++i) {
    const auto w = qmath::qdrop_words(seed, i / 4);
    CHECK_EQ(keep[i], qmath::qdrop_keep_word(w.w[i % 4], 0.5f) ? 1 : 0);
  }
}

int main() {
  RUN(test_philox_known_answers);
  RUN(test_rounding_matches_nearbyint);
  RUN(test_exp_log_accuracy);
  RUN(test_fake_quant_loop);
  RUN(test_adaround_init_roundtrip);
  RUN(test_regularizer_gradient);
  RUN(test_qdrop_mask_split_invariance);
  RUN(test_qdrop_mask_equals_direct_philox);
  return report();
}
