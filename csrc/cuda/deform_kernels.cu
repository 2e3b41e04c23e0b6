// Modulated deformable convolution kernels: one thread per column element, per scattered tap, or per
// sampled point; the per-element math is csrc/core/deform_conv.h's.
#include "deform_kernels.cuh"

namespace selfocus {
namespace cuda {
namespace {

constexpr int kThreads = 256;

inline int blocks_for(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

__global__ void im2col_kernel(dcn::Geometry g, const float* input, const float* offset, const float* mask,
                              float* columns, int64_t n) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e < n) dcn::im2col_element(g, input, offset, mask, e, columns);
}

__global__ void col2im_kernel(dcn::Geometry g, const float* offset, const float* mask, const float* grad_columns,
                              float* grad_input, int64_t n) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  const int hw = g.out_h * g.out_w, kk = g.kh * g.kw;
  const int p = static_cast<int>(e % hw), k = static_cast<int>((e / hw) % kk);
  const int c = static_cast<int>(e / (static_cast<int64_t>(hw) * kk));
  float y, x, m;
  dcn::sample_point(g, offset, mask, c / (g.channels / g.offset_groups), k, p, &y, &x, &m);
  int idx[4];
  float w[4];
  if (!dcn::corners(g.height, g.width, y, x, idx, w)) return;
  const float v = m * grad_columns[e];
  float* plane = grad_input + static_cast<int64_t>(c) * g.height * g.width;
  for (int q = 0; q < 4; ++q)
    if (idx[q] >= 0) atomicAdd(plane + idx[q], w[q] * v);
}

__global__ void coord_kernel(dcn::Geometry g, const float* input, const float* offset, const float* mask,
                             const float* grad_columns, float* grad_offset, float* grad_mask, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int hw = g.out_h * g.out_w, kk = g.kh * g.kw;
  const int p = static_cast<int>(i % hw), k = static_cast<int>((i / hw) % kk);
  const int grp = static_cast<int>(i / (static_cast<int64_t>(hw) * kk));
  float dy, dx, dm;
  dcn::coord_grad_point(g, input, offset, mask, grad_columns, grp, k, p, &dy, &dx, &dm);
  grad_offset[(2 * (grp * kk + k)) * hw + p] = dy;
  grad_offset[(2 * (grp * kk + k) + 1) * hw + p] = dx;
  grad_mask[(grp * kk + k) * hw + p] = dm;
}

}  // namespace

cudaError_t deform_im2col(const dcn::Geometry& g, const float* input, const float* offset, const float* mask,
                          float* columns, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(g.channels) * g.kh * g.kw * g.out_h * g.out_w;
  if (n == 0) return cudaSuccess;
  im2col_kernel<<<blocks_for(n), kThreads, 0, stream>>>(g, input, offset, mask, columns, n);
  return cudaGetLastError();
}

cudaError_t deform_col2im(const dcn::Geometry& g, const float* offset, const float* mask, const float* grad_columns,
                          float* grad_input, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(g.channels) * g.kh * g.kw * g.out_h * g.out_w;
  if (n == 0) return cudaSuccess;
  col2im_kernel<<<blocks_for(n), kThreads, 0, stream>>>(g, offset, mask, grad_columns, grad_input, n);
  return cudaGetLastError();
}

cudaError_t deform_coord_grad(const dcn::Geometry& g, const float* input, const float* offset, const float* mask,
                              const float* grad_columns, float* grad_offset, float* grad_mask, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(g.offset_groups) * g.kh * g.kw * g.out_h * g.out_w;
  if (n == 0) return cudaSuccess;
  coord_kernel<<<blocks_for(n), kThreads, 0, stream>>>(g, input, offset, mask, grad_columns, grad_offset, grad_mask, n);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace selfocus
