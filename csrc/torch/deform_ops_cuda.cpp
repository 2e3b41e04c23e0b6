// CUDA implementations of selfocus::deform_conv2d and its backward: argument checks (deform_args.h), the
// ATen-free column kernels of csrc/cuda on the current stream, grouped matrix products in ATen.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "../cuda/deform_kernels.cuh"
#include "deform_args.h"

namespace selfocus {
namespace glue {
namespace {

void check_launch(const char* op, cudaError_t err) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

at::Tensor columns_cuda(const char* op, const DeformCall& c, int64_t b) {
  const auto& g = c.g;
  at::Tensor cols = at::empty({int64_t(g.channels) * g.kh * g.kw, int64_t(g.out_h) * g.out_w}, c.input.options());
  check_launch(op, cuda::deform_im2col(g, c.input[b].data_ptr<float>(), c.offset[b].data_ptr<float>(),
                                       c.mask[b].data_ptr<float>(), cols.data_ptr<float>(),
                                       c10::cuda::getCurrentCUDAStream()));
  return cols;
}

at::Tensor deform_conv2d_cuda(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                              const at::Tensor& weight, const c10::optional<at::Tensor>& bias, at::IntArrayRef stride,
                              at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, int64_t offset_groups) {
  const char* op = "deform_conv2d";
  const c10::cuda::CUDAGuard guard(input.device());
  const DeformCall c = prepare_deform(op, input, offset, mask, weight, stride, padding, dilation, groups, offset_groups);
  check_bias(op, bias, c);
  at::Tensor out = at::empty({c.batch, c.out_channels, c.g.out_h, c.g.out_w}, c.input.options());
  const at::Tensor w = grouped(c.weight, c.groups, c.out_channels);
  const int64_t rows = int64_t(c.g.channels) * c.g.kh * c.g.kw;
  for (int64_t b = 0; b < c.batch; ++b)
    out[b].copy_(at::bmm(w, grouped(columns_cuda(op, c, b), c.groups, rows)).view({c.out_channels, c.g.out_h, c.g.out_w}));
  if (bias.has_value() && bias->defined()) out.add_(bias->view({1, -1, 1, 1}));
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> deform_conv2d_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    int64_t groups, int64_t offset_groups) {
  const char* op = "deform_conv2d_backward";
  const c10::cuda::CUDAGuard guard(input.device());
  const DeformCall c = prepare_deform(op, input, offset, mask, weight, stride, padding, dilation, groups, offset_groups);
  check_grad_out(op, grad_out, c);
  const auto& g = c.g;
  const int64_t hw = int64_t(g.out_h) * g.out_w, rows = int64_t(g.channels) * g.kh * g.kw;
  const at::Tensor gout = grad_out.contiguous();
  at::Tensor g_in = at::zeros_like(c.input), g_off = at::zeros_like(c.offset), g_mask = at::zeros_like(c.mask);
  at::Tensor g_w = at::zeros_like(c.weight);
  const at::Tensor w = grouped(c.weight, c.groups, c.out_channels);
  at::Tensor g_w_grouped = grouped(g_w, c.groups, c.out_channels);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for (int64_t b = 0; b < c.batch; ++b) {
    const at::Tensor go = gout[b].reshape({c.groups, c.out_channels / c.groups, hw});
    g_w_grouped.add_(at::bmm(go, grouped(columns_cuda(op, c, b), c.groups, rows).transpose(1, 2)));
    const at::Tensor gcols = at::bmm(w.transpose(1, 2), go).reshape({rows, hw}).contiguous();
    check_launch(op, cuda::deform_col2im(g, c.offset[b].data_ptr<float>(), c.mask[b].data_ptr<float>(),
                                         gcols.data_ptr<float>(), g_in[b].data_ptr<float>(), stream));
    check_launch(op, cuda::deform_coord_grad(g, c.input[b].data_ptr<float>(), c.offset[b].data_ptr<float>(),
                                             c.mask[b].data_ptr<float>(), gcols.data_ptr<float>(),
                                             g_off[b].data_ptr<float>(), g_mask[b].data_ptr<float>(), stream));
  }
  return {g_in, g_off, g_mask, g_w, gout.sum({0, 2, 3})};
}

}  // namespace

TORCH_LIBRARY_IMPL(selfocus, CUDA, m) {
  m.impl("deform_conv2d", &deform_conv2d_cuda);
  m.impl("deform_conv2d_backward", &deform_conv2d_backward_cuda);
}

}  // namespace glue
}  // namespace selfocus
