// CUDA implementations of the selfocus quantization ops: argument checks (op_args.h), then the ATen-free
// launchers of csrc/cuda on the current stream. Compiled only when torch has CUDA.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../cuda/quant_kernels.cuh"
#include "op_args.h"

namespace selfocus {
namespace glue {
namespace {

cuda::DType device_dtype(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kHalf:
      return cuda::DType::kFloat16;
    case at::kBFloat16:
      return cuda::DType::kBFloat16;
    default:
      return cuda::DType::kFloat32;
  }
}

void check_launch(const char* op, cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

core::IntFormat fmt(int64_t bits, bool is_signed) { return {static_cast<int>(bits), is_signed}; }

at::Tensor scratch_for(const at::Tensor& x) {
  return at::empty({cuda::reduction_scratch_size(x.numel())}, x.options().dtype(at::kDouble));
}

at::Tensor fake_quant_cuda(const at::Tensor& x, const at::Tensor& scale, int64_t bits, bool is_signed,
                           c10::optional<int64_t> ch_axis) {
  const char* op = "fake_quant";
  check_element_tensor(op, "x", x);
  check_bits(op, bits);
  const ChannelArgs ca = channel_args(op, x, scale, ch_axis);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty_like(xc);
  check_launch(op, cuda::fake_quant_forward(xc.data_ptr(), ca.scale.data_ptr<float>(), y.data_ptr(), xc.numel(),
                                            ca.layout, fmt(bits, is_signed), device_dtype(xc),
                                            c10::cuda::getCurrentCUDAStream()));
  return y;
}

at::Tensor fake_quant_backward_cuda(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& scale,
                                    int64_t bits, bool is_signed, c10::optional<int64_t> ch_axis) {
  const char* op = "fake_quant_backward";
  check_element_tensor(op, "x", x);
  check_like(op, "grad", grad, "x", x);
  check_bits(op, bits);
  const ChannelArgs ca = channel_args(op, x, scale, ch_axis);
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const at::Tensor gc = grad.contiguous();
  at::Tensor gx = at::empty_like(xc);
  check_launch(op, cuda::fake_quant_backward(gc.data_ptr(), xc.data_ptr(), ca.scale.data_ptr<float>(),
                                             gx.data_ptr(), xc.numel(), ca.layout, fmt(bits, is_signed),
                                             device_dtype(xc), c10::cuda::getCurrentCUDAStream()));
  return gx;
}

at::Tensor adaround_quant_cuda(const at::Tensor& w, const at::Tensor& v, const at::Tensor& scale, int64_t bits,
                               bool hard) {
  const char* op = "adaround_quant";
  check_element_tensor(op, "w", w);
  check_like(op, "v", v, "w", w);
  check_bits(op, bits);
  const ChannelArgs ca = out_channel_args(op, w, scale);
  const c10::cuda::CUDAGuard guard(w.device());
  const at::Tensor wc = w.contiguous();
  const at::Tensor vc = v.contiguous();
  at::Tensor y = at::empty_like(wc);
  check_launch(op, cuda::adaround_forward(wc.data_ptr(), vc.data_ptr(), ca.scale.data_ptr<float>(), y.data_ptr(),
                                          wc.numel(), ca.layout, static_cast<int>(bits), hard, device_dtype(wc),
                                          c10::cuda::getCurrentCUDAStream()));
  return y;
}

at::Tensor adaround_quant_backward_cuda(const at::Tensor& grad, const at::Tensor& w, const at::Tensor& v,
                                        const at::Tensor& scale, int64_t bits) {
  const char* op = "adaround_quant_backward";
  check_element_tensor(op, "w", w);
  check_like(op, "v", v, "w", w);
  check_like(op, "grad", grad, "w", w);
  check_bits(op, bits);
  const ChannelArgs ca = out_channel_args(op, w, scale);
  const c10::cuda::CUDAGuard guard(w.device());
  const at::Tensor wc = w.contiguous();
  const at::Tensor vc = v.contiguous();
  const at::Tensor gc = grad.contiguous();
  at::Tensor gv = at::empty_like(vc);
  check_launch(op, cuda::adaround_backward(gc.data_ptr(), wc.data_ptr(), vc.data_ptr(), ca.scale.data_ptr<float>(),
                                           gv.data_ptr(), wc.numel(), ca.layout, static_cast<int>(bits),
                                           device_dtype(wc), c10::cuda::getCurrentCUDAStream()));
  return gv;
}

at::Tensor adaround_init_cuda(const at::Tensor& w, const at::Tensor& scale, int64_t bits) {
  const char* op = "adaround_init";
  check_element_tensor(op, "w", w);
  check_bits(op, bits);
  const ChannelArgs ca = out_channel_args(op, w, scale);
  const c10::cuda::CUDAGuard guard(w.device());
  const at::Tensor wc = w.contiguous();
  at::Tensor v = at::empty_like(wc);
  check_launch(op, cuda::adaround_init(wc.data_ptr(), ca.scale.data_ptr<float>(), v.data_ptr(), wc.numel(),
                                       ca.layout, device_dtype(wc), c10::cuda::getCurrentCUDAStream()));
  return v;
}

std::tuple<at::Tensor, at::Tensor> adaround_regularizer_cuda(const at::Tensor& v, double beta, bool with_grad) {
  const char* op = "adaround_regularizer";
  check_element_tensor(op, "v", v);
  check_beta(op, beta);
  const c10::cuda::CUDAGuard guard(v.device());
  const at::Tensor vc = v.contiguous();
  at::Tensor grad = with_grad ? at::empty_like(vc) : at::empty({0}, vc.options());
  at::Tensor total = at::empty({}, vc.options().dtype(at::kFloat));
  at::Tensor scratch = scratch_for(vc);
  check_launch(op, cuda::adaround_regularizer(vc.data_ptr(), static_cast<float>(beta),
                                              with_grad ? grad.data_ptr() : nullptr, total.data_ptr<float>(),
                                              scratch.data_ptr<double>(), vc.numel(), device_dtype(vc),
                                              c10::cuda::getCurrentCUDAStream()));
  return {total.to(vc.scalar_type()), grad};
}

at::Tensor act_quant_cuda(const at::Tensor& x, const at::Tensor& step, int64_t bits, bool is_signed,
                          double keep_prob, int64_t seed, double grad_scale) {
  const char* op = "act_quant";
  check_element_tensor(op, "x", x);
  check_bits(op, bits);
  check_keep_prob(op, keep_prob);
  check_finite(op, "grad_scale", grad_scale);
  const at::Tensor s = float_params(op, "step", step, 1, "one step per tensor", x, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty_like(xc);
  check_launch(op, cuda::act_quant_forward(xc.data_ptr(), s.data_ptr<float>(), y.data_ptr(), xc.numel(),
                                           fmt(bits, is_signed), static_cast<float>(keep_prob),
                                           static_cast<uint64_t>(seed), device_dtype(xc),
                                           c10::cuda::getCurrentCUDAStream()));
  return y;
}

std::tuple<at::Tensor, at::Tensor> act_quant_backward_cuda(const at::Tensor& grad, const at::Tensor& x,
                                                           const at::Tensor& step, int64_t bits, bool is_signed,
                                                           double keep_prob, int64_t seed, double grad_scale) {
  const char* op = "act_quant_backward";
  check_element_tensor(op, "x", x);
  check_like(op, "grad", grad, "x", x);
  check_bits(op, bits);
  check_keep_prob(op, keep_prob);
  check_finite(op, "grad_scale", grad_scale);
  const at::Tensor s = float_params(op, "step", step, 1, "one step per tensor", x, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  const at::Tensor gc = grad.contiguous();
  at::Tensor gx = at::empty_like(xc);
  at::Tensor gstep = at::empty({}, xc.options().dtype(at::kFloat));
  at::Tensor scratch = scratch_for(xc);
  check_launch(op, cuda::act_quant_backward(gc.data_ptr(), xc.data_ptr(), s.data_ptr<float>(), gx.data_ptr(),
                                            gstep.data_ptr<float>(), scratch.data_ptr<double>(), xc.numel(),
                                            fmt(bits, is_signed), static_cast<float>(keep_prob),
                                            static_cast<uint64_t>(seed), static_cast<float>(grad_scale),
                                            device_dtype(xc), c10::cuda::getCurrentCUDAStream()));
  return {gx, gstep.to(step.scalar_type()).expand(step.sizes()).contiguous()};
}

// The mask is a pure function of (seed, element index), so the CPU draw is the device draw.
at::Tensor qdrop_mask_cuda(const at::Tensor& x, double keep_prob, int64_t seed) {
  const at::Tensor on_cpu = at::empty(x.sizes(), x.options().device(at::kCPU).dtype(at::kFloat));
  return c10::Dispatcher::singleton()
      .findSchemaOrThrow("selfocus::qdrop_mask", "")
      .typed<at::Tensor(const at::Tensor&, double, int64_t)>()
      .call(on_cpu, keep_prob, seed)
      .to(x.device());
}

}  // namespace

TORCH_LIBRARY_IMPL(selfocus, CUDA, m) {
  m.impl("fake_quant", &fake_quant_cuda);
  m.impl("fake_quant_backward", &fake_quant_backward_cuda);
  m.impl("adaround_quant", &adaround_quant_cuda);
  m.impl("adaround_quant_backward", &adaround_quant_backward_cuda);
  m.impl("adaround_init", &adaround_init_cuda);
  m.impl("adaround_regularizer", &adaround_regularizer_cuda);
  m.impl("act_quant", &act_quant_cuda);
  m.impl("act_quant_backward", &act_quant_backward_cuda);
  m.impl("qdrop_mask", &qdrop_mask_cuda);
}

}  // namespace glue
}  // namespace selfocus
