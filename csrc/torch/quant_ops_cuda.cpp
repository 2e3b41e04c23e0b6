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

at::Tensor scratch_for(const at::Tensor& x) {
  return at::empty({cuda::reduction_scratch_size(x.numel())}, x.options().dtype(at::kDouble));
}

cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream(); }

at::Tensor fake_quant_cuda(const at::Tensor& x, const at::Tensor& scale, int64_t bits, bool is_signed,
                           c10::optional<int64_t> ch_axis) {
  const char* op = "fake_quant";
  const c10::cuda::CUDAGuard guard(x.device());
  const FakeQuantCall c = prepare_fake_quant(op, x, scale, bits, is_signed, ch_axis);
  at::Tensor y = at::empty_like(c.x);
  check_launch(op, cuda::fake_quant_forward(c.x.data_ptr(), c.ca.scale.data_ptr<float>(), y.data_ptr(),
                                            c.x.numel(), c.ca.layout, c.fmt, device_dtype(c.x), stream()));
  return y;
}

at::Tensor fake_quant_backward_cuda(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& scale,
                                    int64_t bits, bool is_signed, c10::optional<int64_t> ch_axis) {
  const char* op = "fake_quant_backward";
  const c10::cuda::CUDAGuard guard(x.device());
  const FakeQuantCall c = prepare_fake_quant(op, x, scale, bits, is_signed, ch_axis, &grad);
  at::Tensor gx = at::empty_like(c.x);
  check_launch(op, cuda::fake_quant_backward(c.grad.data_ptr(), c.x.data_ptr(), c.ca.scale.data_ptr<float>(),
                                             gx.data_ptr(), c.x.numel(), c.ca.layout, c.fmt, device_dtype(c.x),
                                             stream()));
  return gx;
}

at::Tensor adaround_quant_cuda(const at::Tensor& w, const at::Tensor& v, const at::Tensor& scale, int64_t bits,
                               bool hard) {
  const char* op = "adaround_quant";
  const c10::cuda::CUDAGuard guard(w.device());
  const AdaRoundCall c = prepare_adaround(op, w, &v, scale, bits);
  at::Tensor y = at::empty_like(c.w);
  check_launch(op, cuda::adaround_forward(c.w.data_ptr(), c.v.data_ptr(), c.ca.scale.data_ptr<float>(),
                                          y.data_ptr(), c.w.numel(), c.ca.layout, c.bits, hard,
                                          device_dtype(c.w), stream()));
  return y;
}

at::Tensor adaround_quant_ste_cuda(const at::Tensor& w, const at::Tensor& v, const at::Tensor& scale, int64_t bits) {
  const char* op = "adaround_quant_ste";
  const c10::cuda::CUDAGuard guard(w.device());
  const AdaRoundCall c = prepare_adaround(op, w, &v, scale, bits);
  at::Tensor y = at::empty_like(c.w);
  check_launch(op, cuda::adaround_forward(c.w.data_ptr(), c.v.data_ptr(), c.ca.scale.data_ptr<float>(),
                                          y.data_ptr(), c.w.numel(), c.ca.layout, c.bits, /*hard=*/true,
                                          device_dtype(c.w), stream()));
  return y;
}

at::Tensor adaround_quant_backward_cuda(const at::Tensor& grad, const at::Tensor& w, const at::Tensor& v,
                                        const at::Tensor& scale, int64_t bits) {
  const char* op = "adaround_quant_backward";
  const c10::cuda::CUDAGuard guard(w.device());
  const AdaRoundCall c = prepare_adaround(op, w, &v, scale, bits, &grad);
  at::Tensor gv = at::empty_like(c.v);
  check_launch(op, cuda::adaround_backward(c.grad.data_ptr(), c.w.data_ptr(), c.v.data_ptr(),
                                           c.ca.scale.data_ptr<float>(), gv.data_ptr(), c.w.numel(), c.ca.layout,
                                           c.bits, device_dtype(c.w), stream()));
  return gv;
}

at::Tensor adaround_init_cuda(const at::Tensor& w, const at::Tensor& scale, int64_t bits) {
  const char* op = "adaround_init";
  const c10::cuda::CUDAGuard guard(w.device());
  const AdaRoundCall c = prepare_adaround(op, w, nullptr, scale, bits);
  at::Tensor v = at::empty_like(c.w);
  check_launch(op, cuda::adaround_init(c.w.data_ptr(), c.ca.scale.data_ptr<float>(), v.data_ptr(), c.w.numel(),
                                       c.ca.layout, device_dtype(c.w), stream()));
  return v;
}

std::tuple<at::Tensor, at::Tensor> adaround_regularizer_cuda(const at::Tensor& v, double beta, bool with_grad) {
  const char* op = "adaround_regularizer";
  const c10::cuda::CUDAGuard guard(v.device());
  const at::Tensor vc = prepare_regularizer(op, v, beta);
  at::Tensor grad = with_grad ? at::empty_like(vc) : at::empty({0}, vc.options());
  at::Tensor total = at::empty({}, vc.options().dtype(at::kFloat));
  at::Tensor scratch = scratch_for(vc);
  check_launch(op, cuda::adaround_regularizer(vc.data_ptr(), static_cast<float>(beta),
                                              with_grad ? grad.data_ptr() : nullptr, total.data_ptr<float>(),
                                              scratch.data_ptr<double>(), vc.numel(), device_dtype(vc), stream()));
  return {total.to(vc.scalar_type()), grad};
}

at::Tensor act_quant_cuda(const at::Tensor& x, const at::Tensor& step, int64_t bits, bool is_signed,
                          double keep_prob, int64_t seed, double grad_scale) {
  const char* op = "act_quant";
  const c10::cuda::CUDAGuard guard(x.device());
  const ActQuantCall c = prepare_act_quant(op, x, step, bits, is_signed, keep_prob, seed, grad_scale);
  at::Tensor y = at::empty_like(c.x);
  check_launch(op, cuda::act_quant_forward(c.x.data_ptr(), c.step.data_ptr<float>(), y.data_ptr(), c.x.numel(),
                                           c.fmt, c.keep_prob, c.seed, device_dtype(c.x), stream()));
  return y;
}

std::tuple<at::Tensor, at::Tensor> act_quant_backward_cuda(const at::Tensor& grad, const at::Tensor& x,
                                                           const at::Tensor& step, int64_t bits, bool is_signed,
                                                           double keep_prob, int64_t seed, double grad_scale) {
  const char* op = "act_quant_backward";
  const c10::cuda::CUDAGuard guard(x.device());
  const ActQuantCall c = prepare_act_quant(op, x, step, bits, is_signed, keep_prob, seed, grad_scale, &grad);
  at::Tensor gx = at::empty_like(c.x);
  at::Tensor gstep = at::empty({}, c.x.options().dtype(at::kFloat));
  at::Tensor scratch = scratch_for(c.x);
  check_launch(op, cuda::act_quant_backward(c.grad.data_ptr(), c.x.data_ptr(), c.step.data_ptr<float>(),
                                            gx.data_ptr(), gstep.data_ptr<float>(), scratch.data_ptr<double>(),
                                            c.x.numel(), c.fmt, c.keep_prob, c.seed, c.grad_scale,
                                            device_dtype(c.x), stream()));
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
  m.impl("adaround_quant_ste", &adaround_quant_ste_cuda);
  m.impl("adaround_init", &adaround_init_cuda);
  m.impl("adaround_regularizer", &adaround_regularizer_cuda);
  m.impl("act_quant", &act_quant_cuda);
  m.impl("act_quant_backward", &act_quant_backward_cuda);
  m.impl("qdrop_mask", &qdrop_mask_cuda);
}

}  // namespace glue
}  // namespace selfocus
