// Argument checks of the deformable convolution ops, shared by the CPU and CUDA implementations: shapes,
// dtypes and devices are checked before any memory is touched; errors name the argument.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "../core/deform_conv.h"

namespace selfocus {
namespace glue {

struct DeformCall {
  at::Tensor input, offset, mask, weight;  // contiguous float32
  dcn::Geometry g;
  int64_t batch, out_channels, groups;
};

inline DeformCall prepare_deform(const char* op, const at::Tensor& input, const at::Tensor& offset,
                                 const at::Tensor& mask, const at::Tensor& weight, at::IntArrayRef stride,
                                 at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                 int64_t offset_groups) {
  const std::pair<const char*, const at::Tensor*> named[] = {
      {"input", &input}, {"offset", &offset}, {"mask", &mask}, {"weight", &weight}};
  for (const auto& nt : named) {
    TORCH_CHECK(nt.second->defined(), op, ": ", nt.first, " must be a tensor, got None");
    TORCH_CHECK(nt.second->dim() == 4, op, ": ", nt.first, " must have 4 dims, got ", nt.second->sizes());
    TORCH_CHECK(nt.second->scalar_type() == at::kFloat, op, ": ", nt.first, " must be float32, got ",
                nt.second->scalar_type());
    TORCH_CHECK(nt.second->device() == input.device(), op, ": ", nt.first, " is on ", nt.second->device(),
                " but input is on ", input.device());
  }
  TORCH_CHECK(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2, op,
              ": stride, padding and dilation must have 2 values each");
  TORCH_CHECK(stride[0] >= 1 && stride[1] >= 1 && dilation[0] >= 1 && dilation[1] >= 1, op,
              ": stride and dilation must be >= 1, got ", stride, " and ", dilation);
  TORCH_CHECK(padding[0] >= 0 && padding[1] >= 0, op, ": padding must be >= 0, got ", padding);
  const int64_t C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t Co = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  TORCH_CHECK(groups >= 1 && C % groups == 0 && Co % groups == 0, op, ": groups (", groups,
              ") must divide the input channels (", C, ") and the output channels (", Co, ")");
  TORCH_CHECK(weight.size(1) * groups == C, op, ": weight must be [out, in / groups, kh, kw] = [", Co, ", ",
              C / groups, ", kh, kw], got ", weight.sizes());
  TORCH_CHECK(offset_groups >= 1 && C % offset_groups == 0, op, ": offset_groups (", offset_groups,
              ") must divide the input channels (", C, ")");
  TORCH_CHECK(kh >= 1 && kw >= 1, op, ": the kernel must be at least 1x1, got ", weight.sizes());
  const int64_t Ho = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
  const int64_t Wo = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
  TORCH_CHECK(H >= 1 && W >= 1 && Ho >= 1 && Wo >= 1, op, ": input ", input.sizes(), " is too small for the ",
              kh, "x", kw, " kernel (output ", Ho, "x", Wo, ")");
  const int64_t B = input.size(0), kk = kh * kw;
  TORCH_CHECK(offset.size(0) == B && offset.size(1) == 2 * offset_groups * kk && offset.size(2) == Ho &&
                  offset.size(3) == Wo,
              op, ": offset must be [", B, ", ", 2 * offset_groups * kk, ", ", Ho, ", ", Wo, "], got ", offset.sizes());
  TORCH_CHECK(mask.size(0) == B && mask.size(1) == offset_groups * kk && mask.size(2) == Ho && mask.size(3) == Wo,
              op, ": mask must be [", B, ", ", offset_groups * kk, ", ", Ho, ", ", Wo, "], got ", mask.sizes());
  TORCH_CHECK(C * kk * Ho * Wo < (int64_t(1) << 31), op, ": one image's column matrix is too large");
  DeformCall call;
  call.input = input.contiguous();
  call.offset = offset.contiguous();
  call.mask = mask.contiguous();
  call.weight = weight.contiguous();
  call.g = dcn::Geometry{static_cast<int>(C), static_cast<int>(H), static_cast<int>(W), static_cast<int>(kh),
                         static_cast<int>(kw), static_cast<int>(stride[0]), static_cast<int>(stride[1]),
                         static_cast<int>(padding[0]), static_cast<int>(padding[1]), static_cast<int>(dilation[0]),
                         static_cast<int>(dilation[1]), static_cast<int>(Ho), static_cast<int>(Wo),
                         static_cast<int>(offset_groups)};
  call.batch = B;
  call.out_channels = Co;
  call.groups = groups;
  return call;
}

inline void check_bias(const char* op, const c10::optional<at::Tensor>& bias, const DeformCall& c) {
  if (!bias.has_value() || !bias->defined()) return;
  TORCH_CHECK(bias->dim() == 1 && bias->size(0) == c.out_channels, op, ": bias must be [", c.out_channels,
              "], got ", bias->sizes());
  TORCH_CHECK(bias->scalar_type() == at::kFloat && bias->device() == c.input.device(), op,
              ": bias must be float32 on the input's device");
}

inline void check_grad_out(const char* op, const at::Tensor& grad, const DeformCall& c) {
  TORCH_CHECK(grad.defined() && grad.dim() == 4 && grad.size(0) == c.batch && grad.size(1) == c.out_channels &&
                  grad.size(2) == c.g.out_h && grad.size(3) == c.g.out_w,
              op, ": grad_out must be [", c.batch, ", ", c.out_channels, ", ", c.g.out_h, ", ", c.g.out_w, "], got ",
              grad.defined() ? grad.sizes() : at::IntArrayRef{});
  TORCH_CHECK(grad.scalar_type() == at::kFloat && grad.device() == c.input.device(), op,
              ": grad_out must be float32 on the input's device");
}

// weight [Co, C/G, kh, kw] as G matrices [Co/G, C/G*kk]; columns [C*kk, HW] as G matrices [C/G*kk, HW].
inline at::Tensor grouped(const at::Tensor& t, int64_t groups, int64_t rows) {
  return t.reshape({groups, rows / groups, -1});
}

}  // namespace glue
}  // namespace selfocus
