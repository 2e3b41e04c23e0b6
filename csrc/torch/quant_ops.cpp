// Schemas of the selfocus quantization ops and their CPU implementations (the loops live in csrc/core).
#include <ATen/Parallel.h>
#include <torch/library.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "../core/quant_cpu.h"
#include "op_args.h"

namespace selfocus {
namespace glue {

namespace {
std::atomic<bool> g_device_value_checks{true};
}  // namespace

bool device_value_checks_enabled() { return g_device_value_checks.load(std::memory_order_relaxed); }
void set_device_value_checks(bool enabled) { g_device_value_checks.store(enabled, std::memory_order_relaxed); }

namespace {

// Elements per parallel task: large enough to amortise the thread hand-off.
constexpr int64_t kGrain = 32768;
// Reductions are split into fixed chunks, independent of the thread count, and summed in chunk order,
// so their results are deterministic.
constexpr int64_t kReduceChunk = 65536;

// Whether large outputs get the huge-page advice below (SELFOCUS_THP=0 turns it off).
bool huge_page_advice_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("SELFOCUS_THP");
    return v == nullptr || std::string(v) != "0";
  }();
  return enabled;
}

// A new contiguous float tensor shaped like `like`, for a kernel to fill. Large outputs are advised to use
// transparent huge pages before their first touch: a fresh multi-megabyte allocation otherwise spends most
// of an elementwise op's time in 4 KiB page faults. The advice only affects this tensor's pages and is a
// no-op where the system does not allow it.
at::Tensor new_output(const at::Tensor& like) {
  at::Tensor out = at::empty(like.sizes(), like.options().memory_format(at::MemoryFormat::Contiguous));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const size_t bytes = out.nbytes();
  if (bytes >= 4 * kHuge && huge_page_advice_enabled()) {
    const uintptr_t begin = reinterpret_cast<uintptr_t>(out.data_ptr());
    const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t last = (begin + bytes) & ~(kHuge - 1);
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#endif
  return out;
}

template <typename Fn>
double chunked_sum(int64_t n, Fn&& fn) {
  const int64_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) partial[c] = fn(c * kReduceChunk, std::min(n, (c + 1) * kReduceChunk));
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

at::Tensor fake_quant_cpu(const at::Tensor& x, const at::Tensor& scale, int64_t bits, bool is_signed,
                          c10::optional<int64_t> ch_axis) {
  const FakeQuantCall c = prepare_fake_quant("fake_quant", x, scale, bits, is_signed, ch_axis);
  at::Tensor y = new_output(c.x);
  const float* xp = c.x.data_ptr<float>();
  const float* sp = c.ca.scale.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, c.x.numel(), kGrain, [&](int64_t b, int64_t e) {
    core::fake_quant_forward(xp, sp, yp, b, e, c.ca.layout, c.fmt);
  });
  return y;
}

at::Tensor fake_quant_backward_cpu(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& scale,
                                   int64_t bits, bool is_signed, c10::optional<int64_t> ch_axis) {
  const FakeQuantCall c = prepare_fake_quant("fake_quant_backward", x, scale, bits, is_signed, ch_axis, &grad);
  at::Tensor gx = new_output(c.x);
  const float* xp = c.x.data_ptr<float>();
  const float* gp = c.grad.data_ptr<float>();
  const float* sp = c.ca.scale.data_ptr<float>();
  float* gxp = gx.data_ptr<float>();
  at::parallel_for(0, c.x.numel(), kGrain, [&](int64_t b, int64_t e) {
    core::fake_quant_backward(gp, xp, sp, gxp, b, e, c.ca.layout, c.fmt);
  });
  return gx;
}

at::Tensor adaround_quant_cpu(const at::Tensor& w, const at::Tensor& v, const at::Tensor& scale, int64_t bits,
                              bool hard) {
  const AdaRoundCall c = prepare_adaround("adaround_quant", w, &v, scale, bits);
  at::Tensor y = new_output(c.w);
  const float* wp = c.w.data_ptr<float>();
  const float* vp = c.v.data_ptr<float>();
  const float* sp = c.ca.scale.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, c.w.numel(), kGrain, [&](int64_t b, int64_t e) {
    core::adaround_forward(wp, vp, sp, yp, b, e, c.ca.layout, c.bits, hard);
  });
  return y;
}

// The hard rounding (the deployed weights) as the value; the autograd formula (ops/quant.py) takes the
// soft rounding's gradient in v, so one call does what "hard + (soft - soft.detach())" did with two.
at::Tensor adaround_quant_ste_cpu(const at::Tensor& w, const at::Tensor& v, const at::Tensor& scale, int64_t bits) {
  const AdaRoundCall c = prepare_adaround("adaround_quant_ste", w, &v, scale, bits);
  at::Tensor y = new_output(c.w);
  const float* wp = c.w.data_ptr<float>();
  const float* vp = c.v.data_ptr<float>();
  const float* sp = c.ca.scale.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, c.w.numel(), kGrain, [&](int64_t b, int64_t e) {
    core::adaround_forward(wp, vp, sp, yp, b, e, c.ca.layout, c.bits, /*hard=*/true);
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor> adaround_quant_slope_cpu(const at::Tensor& w, const at::Tensor& v,
                                                            const at::Tensor& scale, int64_t bits) {
  const AdaRoundCall c = prepare_adaround("adaround_quant_slope", w, &v, scale, bits);
  at::Tensor y = new_output(c.w);
  at::Tensor slope = new_output(c.w);
  const float* wp = c.w.data_ptr<float>();
  const float* vp = c.v.data_ptr<float>();
  const float* sp = c.ca.scale.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  float* dp = slope.data_ptr<float>();
  at::parallel_for(0, c.w.numel(), kGrain, [&](int64_t b, int64_t e) {
    core::adaround_forward_slope(wp, vp, sp, yp, dp, b, e, c.ca.layout, c.bits);
  });
  return {y, slope};
}

at::Tensor adaround_quant_slope_backward_cpu(const at::Tensor& grad, const at::Tensor& slope) {
  const char* op = "adaround_quant_slope_backward";
  check_element_tensor(op, "slope", slope);
  check_like(op, "grad", grad, "slope", slope);
  const at::Tensor g = grad.contiguous();
  const at::Tensor d = slope.contiguous();
  at::Tensor gv = new_output(d);
  const float* gp = g.data_ptr<float>();
  const float* dp = d.data_ptr<float>();
  float* gvp = gv.data_ptr<float>();
  at::parallel_for(0, d.numel(), kGrain,
                   [&](int64_t b, int64_t e) { core::adaround_slope_backward(gp, dp, gvp, b, e); });
  return gv;
}

at::Tensor adaround_quant_backward_cpu(const at::Tensor& grad, const at::Tensor& w, const at::Tensor& v,
                                       const at::Tensor& scale, int64_t bits) {
  const AdaRoundCall c = prepare_adaround("adaround_quant_backward", w, &v, scale, bits, &grad);
  at::Tensor gv = new_output(c.v);
  const float* wp = c.w.data_ptr<float>();
  const float* vp = c.v.data_ptr<float>();
  const float* gp = c.grad.data_ptr<float>();
  const float* sp = c.ca.scale.data_ptr<float>();
  float* gvp = gv.data_ptr<float>();
  at::parallel_for(0, c.w.numel(), kGrain, [&](int64_t b, int64_t e) {
    core::adaround_backward(gp, wp, vp, sp, gvp, b, e, c.ca.layout, c.bits);
  });
  return gv;
}

at::Tensor adaround_init_cpu(const at::Tensor& w, const at::Tensor& scale, int64_t bits) {
  const AdaRoundCall c = prepare_adaround("adaround_init", w, nullptr, scale, bits);
  at::Tensor v = new_output(c.w);
  const float* wp = c.w.data_ptr<float>();
  const float* sp = c.ca.scale.data_ptr<float>();
  float* vp = v.data_ptr<float>();
  at::parallel_for(0, c.w.numel(), kGrain,
                   [&](int64_t b, int64_t e) { core::adaround_init(wp, sp, vp, b, e, c.ca.layout); });
  return v;
}

std::tuple<at::Tensor, at::Tensor> adaround_regularizer_cpu(const at::Tensor& v, double beta, bool with_grad) {
  const at::Tensor vc = prepare_regularizer("adaround_regularizer", v, beta);
  at::Tensor grad = with_grad ? new_output(vc) : at::empty({0}, vc.options());
  const float* vp = vc.data_ptr<float>();
  float* gp = with_grad ? grad.data_ptr<float>() : nullptr;
  const double total = chunked_sum(vc.numel(), [&](int64_t b, int64_t e) {
    return core::adaround_regularizer(vp, static_cast<float>(beta), gp, b, e);
  });
  return {at::scalar_tensor(total, vc.options()), grad};
}

at::Tensor act_quant_cpu(const at::Tensor& x, const at::Tensor& step, int64_t bits, bool is_signed,
                         double keep_prob, int64_t seed, double grad_scale) {
  const ActQuantCall c = prepare_act_quant("act_quant", x, step, bits, is_signed, keep_prob, seed, grad_scale);
  at::Tensor y = new_output(c.x);
  const float* xp = c.x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const float sv = c.step.data_ptr<float>()[0];
  at::parallel_for(0, c.x.numel(), kGrain, [&](int64_t b, int64_t e) {
    core::act_quant_forward(xp, sv, yp, b, e, c.fmt, c.keep_prob, c.seed);
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor> act_quant_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                          const at::Tensor& step, int64_t bits, bool is_signed,
                                                          double keep_prob, int64_t seed, double grad_scale) {
  const ActQuantCall c =
      prepare_act_quant("act_quant_backward", x, step, bits, is_signed, keep_prob, seed, grad_scale, &grad);
  at::Tensor gx = new_output(c.x);
  const float* xp = c.x.data_ptr<float>();
  const float* gp = c.grad.data_ptr<float>();
  float* gxp = gx.data_ptr<float>();
  const float sv = c.step.data_ptr<float>()[0];
  const double total = chunked_sum(c.x.numel(), [&](int64_t b, int64_t e) {
    return core::act_quant_backward(gp, xp, sv, gxp, b, e, c.fmt, c.keep_prob, c.seed);
  });
  at::Tensor gstep = at::full(step.sizes(), total * grad_scale, step.options());
  return {gx, gstep};
}

at::Tensor qdrop_mask_cpu(const at::Tensor& x, double keep_prob, int64_t seed) {
  const char* op = "qdrop_mask";
  check_keep_prob(op, keep_prob);
  at::Tensor keep = at::empty(x.sizes(), x.options().dtype(at::kBool));
  uint8_t* kp = reinterpret_cast<uint8_t*>(keep.data_ptr<bool>());
  at::parallel_for(0, keep.numel(), kGrain, [&](int64_t b, int64_t e) {
    core::qdrop_keep_mask(kp, b, e, static_cast<float>(keep_prob), static_cast<uint64_t>(seed));
  });
  return keep;
}

}  // namespace

TORCH_LIBRARY(selfocus, m) {
  m.def("fake_quant(Tensor x, Tensor scale, int bits, bool signed=True, int? ch_axis=None) -> Tensor");
  m.def("fake_quant_backward(Tensor grad, Tensor x, Tensor scale, int bits, bool signed, int? ch_axis) -> Tensor");
  m.def("adaround_quant(Tensor w, Tensor v, Tensor scale, int bits, bool hard=False) -> Tensor");
  m.def("adaround_quant_backward(Tensor grad, Tensor w, Tensor v, Tensor scale, int bits) -> Tensor");
  // Hard rounding forward, soft rounding gradient (its backward is adaround_quant_backward).
  m.def("adaround_quant_ste(Tensor w, Tensor v, Tensor scale, int bits) -> Tensor");
  // Soft mode only: the value and dy/dv, for a backward that multiplies instead of recomputing the sigmoid.
  m.def("adaround_quant_slope(Tensor w, Tensor v, Tensor scale, int bits) -> (Tensor, Tensor)");
  m.def("adaround_quant_slope_backward(Tensor grad, Tensor slope) -> Tensor");
  m.def("adaround_init(Tensor w, Tensor scale, int bits) -> Tensor");
  m.def("adaround_regularizer(Tensor v, float beta, bool with_grad=True) -> (Tensor, Tensor)");
  m.def(
      "act_quant(Tensor x, Tensor step, int bits, bool signed, float keep_prob=1.0, int seed=0, "
      "float grad_scale=1.0) -> Tensor");
  m.def(
      "act_quant_backward(Tensor grad, Tensor x, Tensor step, int bits, bool signed, float keep_prob, int seed, "
      "float grad_scale) -> (Tensor, Tensor)");
  m.def("qdrop_mask(Tensor x, float keep_prob, int seed) -> Tensor");
}

TORCH_LIBRARY_IMPL(selfocus, CPU, m) {
  m.impl("fake_quant", &fake_quant_cpu);
  m.impl("fake_quant_backward", &fake_quant_backward_cpu);
  m.impl("adaround_quant", &adaround_quant_cpu);
  m.impl("adaround_quant_backward", &adaround_quant_backward_cpu);
  m.impl("adaround_quant_ste", &adaround_quant_ste_cpu);
  m.impl("adaround_quant_slope", &adaround_quant_slope_cpu);
  m.impl("adaround_quant_slope_backward", &adaround_quant_slope_backward_cpu);
  m.impl("adaround_init", &adaround_init_cpu);
  m.impl("adaround_regularizer", &adaround_regularizer_cpu);
  m.impl("act_quant", &act_quant_cpu);
  m.impl("act_quant_backward", &act_quant_backward_cpu);
  m.impl("qdrop_mask", &qdrop_mask_cpu);
}

}  // namespace glue
}  // namespace selfocus
