// Argument checking and preparation shared by the CPU and CUDA implementations of the selfocus ops.
// Everything a kernel relies on (sizes, dtypes, devices, contiguity, parameter ranges) is checked here,
// before any memory is touched; errors name the op, the argument and what was expected.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <limits>
#include <cstdint>

#include "../core/quant_cpu.h"

namespace selfocus {
namespace glue {

// Whether scale/step values are checked on non-CPU devices (a device-to-host sync per call).
bool device_value_checks_enabled();
void set_device_value_checks(bool enabled);

inline void check_bits(const char* op, int64_t bits) {
  TORCH_CHECK(bits >= 2 && bits <= 8, op, ": bits must be an integer in 2..8, got ", bits);
}

inline void check_element_tensor(const char* op, const char* name, const at::Tensor& t) {
  TORCH_CHECK(t.defined(), op, ": ", name, " must be a tensor, got None");
  const auto dt = t.scalar_type();
  if (t.device().is_cpu()) {
    TORCH_CHECK(dt == at::kFloat, op, ": ", name, " must be float32 on the CPU, got ", dt);
  } else {
    TORCH_CHECK(dt == at::kFloat || dt == at::kHalf || dt == at::kBFloat16, op, ": ", name,
                " must be float32, float16 or bfloat16, got ", dt);
  }
}

inline void check_same_device(const char* op, const char* name, const at::Tensor& t, const char* ref_name,
                              const at::Tensor& ref) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " is on ", t.device(), " but ", ref_name, " is on ",
              ref.device(), "; all tensors must be on the same device");
}

inline void check_like(const char* op, const char* name, const at::Tensor& t, const char* ref_name,
                       const at::Tensor& ref) {
  check_same_device(op, name, t, ref_name, ref);
  TORCH_CHECK(t.sizes() == ref.sizes(), op, ": ", name, " must have the shape of ", ref_name, " ", ref.sizes(),
              ", got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), op, ": ", name, " must have the dtype of ", ref_name, " (",
              ref.scalar_type(), "), got ", t.scalar_type());
}

// Checks that every value is positive, finite and normal (scales and steps: the kernels multiply by 1/s,
// which is inf for a subnormal s).
inline void check_positive_finite(const char* op, const char* name, const at::Tensor& s32) {
  if (s32.numel() == 0) return;
  constexpr float kMin = std::numeric_limits<float>::min();
  if (s32.device().is_cpu()) {
    const float* p = s32.data_ptr<float>();
    for (int64_t i = 0; i < s32.numel(); ++i) {
      TORCH_CHECK(std::isfinite(p[i]) && p[i] >= kMin, op, ": ", name, " must be positive, finite and at least ",
                  kMin, ", got ", p[i], " at index ", i);
    }
  } else if (device_value_checks_enabled()) {
    const bool ok = at::logical_and(s32 >= kMin, at::isfinite(s32)).all().item<bool>();
    TORCH_CHECK(ok, op, ": ", name, " must be positive, finite and at least ", kMin, " (found a value that is not)");
  }
}

// A scale/step tensor as contiguous float32 of `expected` elements (any shape with that many elements).
inline at::Tensor float_params(const char* op, const char* name, const at::Tensor& p, int64_t expected,
                               const char* what, const at::Tensor& ref, const char* ref_name) {
  TORCH_CHECK(p.defined(), op, ": ", name, " must be a tensor, got None");
  check_same_device(op, name, p, ref_name, ref);
  TORCH_CHECK(at::isFloatingType(p.scalar_type()), op, ": ", name, " must be a floating-point tensor, got ",
              p.scalar_type());
  TORCH_CHECK(p.numel() == expected, op, ": ", name, " must have ", expected, " element(s) (", what, "), got ",
              p.numel(), " (shape ", p.sizes(), ")");
  at::Tensor out = p.detach().to(at::kFloat).contiguous().reshape({expected});
  check_positive_finite(op, name, out);
  return out;
}

struct ChannelArgs {
  core::ChannelLayout layout;
  at::Tensor scale;  // float32, contiguous, `layout.channels` elements
};

// Scale layout for `x` quantized per tensor (ch_axis empty) or along ch_axis.
inline ChannelArgs channel_args(const char* op, const at::Tensor& x, const at::Tensor& scale,
                                c10::optional<int64_t> ch_axis) {
  if (!ch_axis.has_value()) {
    return {{1, std::max<int64_t>(x.numel(), 1)},
            float_params(op, "scale", scale, 1, "one scale per tensor", x, "x")};
  }
  const int64_t dim = x.dim();
  TORCH_CHECK(dim > 0, op, ": ch_axis needs x with at least one dimension, got a 0-dim tensor");
  const int64_t axis = *ch_axis;
  TORCH_CHECK(axis >= -dim && axis < dim, op, ": ch_axis must be in [", -dim, ", ", dim - 1, "] for x of shape ",
              x.sizes(), ", got ", axis);
  const int64_t a = axis < 0 ? axis + dim : axis;
  int64_t inner = 1;
  for (int64_t d = a + 1; d < dim; ++d) inner *= x.size(d);
  const int64_t channels = x.size(a);
  return {{std::max<int64_t>(channels, 1), std::max<int64_t>(inner, 1)},
          float_params(op, "scale", scale, channels, "one per channel along ch_axis", x, "x")};
}

// AdaRound's scale: one per output channel (dim 0 of w).
inline ChannelArgs out_channel_args(const char* op, const at::Tensor& w, const at::Tensor& scale) {
  TORCH_CHECK(w.dim() >= 1, op, ": w must have at least one dimension (output channels first), got a 0-dim tensor");
  const int64_t channels = w.size(0);
  const int64_t inner = channels == 0 ? 1 : w.numel() / channels;
  return {{std::max<int64_t>(channels, 1), std::max<int64_t>(inner, 1)},
          float_params(op, "scale", scale, channels, "one per output channel, w.size(0)", w, "w")};
}

inline void check_keep_prob(const char* op, double keep_prob) {
  TORCH_CHECK(keep_prob >= 0.0 && keep_prob <= 1.0, op, ": keep_prob must be in [0, 1], got ", keep_prob);
}

inline void check_finite(const char* op, const char* name, double value) {
  TORCH_CHECK(std::isfinite(value), op, ": ", name, " must be finite, got ", value);
}

inline void check_beta(const char* op, double beta) {
  TORCH_CHECK(std::isfinite(beta) && beta > 0.0, op, ": beta must be positive and finite, got ", beta);
}

// ---------------------------------------------------------------------------------------------------
// Per-op preparation shared by the CPU and CUDA implementations: every check, then contiguous inputs.

inline core::IntFormat int_format(int64_t bits, bool is_signed) { return {static_cast<int>(bits), is_signed}; }

struct FakeQuantCall {
  at::Tensor x;     // contiguous
  at::Tensor grad;  // contiguous; backward only
  ChannelArgs ca;
  core::IntFormat fmt;
};

inline FakeQuantCall prepare_fake_quant(const char* op, const at::Tensor& x, const at::Tensor& scale, int64_t bits,
                                        bool is_signed, c10::optional<int64_t> ch_axis,
                                        const at::Tensor* grad = nullptr) {
  check_element_tensor(op, "x", x);
  if (grad != nullptr) check_like(op, "grad", *grad, "x", x);
  check_bits(op, bits);
  ChannelArgs ca = channel_args(op, x, scale, ch_axis);
  return {x.contiguous(), grad != nullptr ? grad->contiguous() : at::Tensor(), std::move(ca), int_format(bits, is_signed)};
}

struct AdaRoundCall {
  at::Tensor w;     // contiguous
  at::Tensor v;     // contiguous; undefined for adaround_init
  at::Tensor grad;  // contiguous; backward only
  ChannelArgs ca;
  int bits;
};

inline AdaRoundCall prepare_adaround(const char* op, const at::Tensor& w, const at::Tensor* v,
                                     const at::Tensor& scale, int64_t bits, const at::Tensor* grad = nullptr) {
  check_element_tensor(op, "w", w);
  if (v != nullptr) check_like(op, "v", *v, "w", w);
  if (grad != nullptr) check_like(op, "grad", *grad, "w", w);
  check_bits(op, bits);
  ChannelArgs ca = out_channel_args(op, w, scale);
  return {w.contiguous(), v != nullptr ? v->contiguous() : at::Tensor(),
          grad != nullptr ? grad->contiguous() : at::Tensor(), std::move(ca), static_cast<int>(bits)};
}

struct ActQuantCall {
  at::Tensor x;     // contiguous
  at::Tensor grad;  // contiguous; backward only
  at::Tensor step;  // float32, one element, same device
  core::IntFormat fmt;
  float keep_prob;
  uint64_t seed;
  float grad_scale;
};

inline ActQuantCall prepare_act_quant(const char* op, const at::Tensor& x, const at::Tensor& step, int64_t bits,
                                      bool is_signed, double keep_prob, int64_t seed, double grad_scale,
                                      const at::Tensor* grad = nullptr) {
  check_element_tensor(op, "x", x);
  if (grad != nullptr) check_like(op, "grad", *grad, "x", x);
  check_bits(op, bits);
  check_keep_prob(op, keep_prob);
  check_finite(op, "grad_scale", grad_scale);
  at::Tensor s = float_params(op, "step", step, 1, "one step per tensor", x, "x");
  return {x.contiguous(),
          grad != nullptr ? grad->contiguous() : at::Tensor(),
          std::move(s),
          int_format(bits, is_signed),
          static_cast<float>(keep_prob),
          static_cast<uint64_t>(seed),
          static_cast<float>(grad_scale)};
}

inline at::Tensor prepare_regularizer(const char* op, const at::Tensor& v, double beta) {
  check_element_tensor(op, "v", v);
  check_beta(op, beta);
  return v.contiguous();
}

}  // namespace glue
}  // namespace selfocus
