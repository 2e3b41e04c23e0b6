// selfocus::deform_conv2d (modulated deformable convolution, DCNv2) and its backward on the CPU: the
// column matrix of csrc/core/deform_conv.h per image, then grouped matrix products.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>

#include "../core/deform_conv.h"
#include "deform_args.h"

namespace selfocus {
namespace glue {
namespace {

at::Tensor columns_cpu(const DeformCall& c, int64_t b) {
  const auto& g = c.g;
  const int64_t hw = int64_t(g.out_h) * g.out_w, n = int64_t(g.channels) * g.kh * g.kw * hw;
  at::Tensor cols = at::empty({int64_t(g.channels) * g.kh * g.kw, hw}, c.input.options());
  const float* in = c.input.data_ptr<float>() + b * int64_t(g.channels) * g.height * g.width;
  const float* off = c.offset.data_ptr<float>() + b * c.offset.stride(0);
  const float* msk = c.mask.data_ptr<float>() + b * c.mask.stride(0);
  float* out = cols.data_ptr<float>();
  at::parallel_for(0, n, 4096, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) dcn::im2col_element(g, in, off, msk, i, out);
  });
  return cols;
}

at::Tensor deform_conv2d_cpu(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                             const at::Tensor& weight, const c10::optional<at::Tensor>& bias, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, int64_t offset_groups) {
  const char* op = "deform_conv2d";
  const DeformCall c = prepare_deform(op, input, offset, mask, weight, stride, padding, dilation, groups, offset_groups);
  check_bias(op, bias, c);
  TORCH_CHECK(input.device().is_cpu(), op, ": expects CPU tensors here");
  at::Tensor out = at::zeros({c.batch, c.out_channels, c.g.out_h, c.g.out_w}, c.input.options());
  const at::Tensor w = grouped(c.weight, c.groups, c.out_channels);
  for (int64_t b = 0; b < c.batch; ++b) {
    const at::Tensor cols = grouped(columns_cpu(c, b), c.groups, c.weight.size(1) * c.groups * c.g.kh * c.g.kw);
    out[b].copy_(at::bmm(w, cols).view({c.out_channels, c.g.out_h, c.g.out_w}));
  }
  if (bias.has_value() && bias->defined()) out.add_(bias->view({1, -1, 1, 1}));
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> deform_conv2d_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
    const at::Tensor& weight, at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
    int64_t groups, int64_t offset_groups) {
  const char* op = "deform_conv2d_backward";
  const DeformCall c = prepare_deform(op, input, offset, mask, weight, stride, padding, dilation, groups, offset_groups);
  check_grad_out(op, grad_out, c);
  TORCH_CHECK(input.device().is_cpu(), op, ": expects CPU tensors here");
  const auto& g = c.g;
  const int64_t hw = int64_t(g.out_h) * g.out_w, kk = int64_t(g.kh) * g.kw;
  const at::Tensor gout = grad_out.contiguous();
  at::Tensor g_in = at::zeros_like(c.input), g_off = at::zeros_like(c.offset), g_mask = at::zeros_like(c.mask);
  at::Tensor g_w = at::zeros_like(c.weight);
  const at::Tensor w = grouped(c.weight, c.groups, c.out_channels);
  at::Tensor g_w_grouped = grouped(g_w, c.groups, c.out_channels);
  for (int64_t b = 0; b < c.batch; ++b) {
    const at::Tensor go = gout[b].reshape({c.groups, c.out_channels / c.groups, hw});
    const at::Tensor cols = grouped(columns_cpu(c, b), c.groups, int64_t(g.channels) * kk);
    g_w_grouped.add_(at::bmm(go, cols.transpose(1, 2)));
    const at::Tensor gcols = at::bmm(w.transpose(1, 2), go).reshape({int64_t(g.channels) * kk, hw}).contiguous();
    const float* gc = gcols.data_ptr<float>();
    const float* in = c.input.data_ptr<float>() + b * c.input.stride(0);
    const float* off = c.offset.data_ptr<float>() + b * c.offset.stride(0);
    const float* msk = c.mask.data_ptr<float>() + b * c.mask.stride(0);
    float* gi = g_in.data_ptr<float>() + b * g_in.stride(0);
    const int per = g.channels / g.offset_groups;
    // input: each channel's plane gathers from its own columns only, so channels run in parallel
    at::parallel_for(0, g.channels, 1, [&](int64_t s, int64_t e) {
      for (int64_t ch = s; ch < e; ++ch) {
        float* plane = gi + ch * g.height * g.width;
        for (int64_t k = 0; k < kk; ++k)
          for (int64_t p = 0; p < hw; ++p) {
            float y, x, m;
            dcn::sample_point(g, off, msk, static_cast<int>(ch / per), static_cast<int>(k), static_cast<int>(p), &y, &x, &m);
            int idx[4];
            float wt[4];
            if (!dcn::corners(g.height, g.width, y, x, idx, wt)) continue;
            const float v = m * gc[(ch * kk + k) * hw + p];
            for (int q = 0; q < 4; ++q)
              if (idx[q] >= 0) plane[idx[q]] += wt[q] * v;
          }
      }
    });
    float* go_off = g_off.data_ptr<float>() + b * g_off.stride(0);
    float* go_mask = g_mask.data_ptr<float>() + b * g_mask.stride(0);
    const int64_t points = int64_t(g.offset_groups) * kk * hw;
    at::parallel_for(0, points, 256, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) {
        const int p = static_cast<int>(i % hw), k = static_cast<int>((i / hw) % kk), grp = static_cast<int>(i / (hw * kk));
        float dy, dx, dm;
        dcn::coord_grad_point(g, in, off, msk, gc, grp, k, p, &dy, &dx, &dm);
        go_off[(2 * (grp * kk + k)) * hw + p] = dy;
        go_off[(2 * (grp * kk + k) + 1) * hw + p] = dx;
        go_mask[(grp * kk + k) * hw + p] = dm;
      }
    });
  }
  at::Tensor g_b = gout.sum({0, 2, 3});
  return {g_in, g_off, g_mask, g_w, g_b};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(selfocus, m) {
  m.def("deform_conv2d(Tensor input, Tensor offset, Tensor mask, Tensor weight, Tensor? bias, int[2] stride, "
        "int[2] padding, int[2] dilation, int groups, int offset_groups) -> Tensor");
  m.def("deform_conv2d_backward(Tensor grad_out, Tensor input, Tensor offset, Tensor mask, Tensor weight, "
        "int[2] stride, int[2] padding, int[2] dilation, int groups, int offset_groups) "
        "-> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(selfocus, CPU, m) {
  m.impl("deform_conv2d", &deform_conv2d_cpu);
  m.impl("deform_conv2d_backward", &deform_conv2d_backward_cpu);
}

}  // namespace glue
}  // namespace selfocus
