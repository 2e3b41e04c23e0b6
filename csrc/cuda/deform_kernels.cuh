// CUDA launchers of the modulated deformable convolution's per-image column work (csrc/core/deform_conv.h:
// the same math as the CPU op). No ATen: raw float32 device pointers of one image, its geometry, a stream.
// The matrix products around them run as ATen calls in the glue.
#pragma once

#include <cuda_runtime_api.h>

#include "../core/deform_conv.h"

namespace selfocus {
namespace cuda {

// columns [C * kh * kw, Ho * Wo] of one image.
cudaError_t deform_im2col(const dcn::Geometry& g, const float* input, const float* offset, const float* mask,
                          float* columns, cudaStream_t stream);

// grad_input [C, H, W] += the column gradients scattered back through the bilinear reads (atomic adds).
cudaError_t deform_col2im(const dcn::Geometry& g, const float* offset, const float* mask, const float* grad_columns,
                          float* grad_input, cudaStream_t stream);

// grad_offset [2 * G_off * kk, Ho, Wo] and grad_mask [G_off * kk, Ho, Wo] of one image.
cudaError_t deform_coord_grad(const dcn::Geometry& g, const float* input, const float* offset, const float* mask,
                              const float* grad_columns, float* grad_offset, float* grad_mask, cudaStream_t stream);

}  // namespace cuda
}  // namespace selfocus
