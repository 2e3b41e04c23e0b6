// CUDA kernel of the batched Lane Distortion Score: the per-image score (csrc/core/lane_distortion.h, the
// same code as the CPU loop) runs in one thread per (draw, image) pair; lanes per image are few (<= 16),
// so the matching fits in the thread's local memory.
#include <cuda_runtime.h>

#include "lane_kernels.cuh"

namespace selfocus {
namespace cuda {
namespace {

constexpr int kThreads = 128;

__global__ void distortion_kernel(const float* ref, int64_t images, int ref_lanes, const float* pert,
                                  int pert_lanes, const float* ys, int rows, lanes::DistortionParams params,
                                  float* out, int64_t pairs) {
  const int64_t ref_stride = static_cast<int64_t>(ref_lanes) * rows;
  const int64_t pert_stride = static_cast<int64_t>(pert_lanes) * rows;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < pairs;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t image = p % images;
    out[p] = lanes::distortion_score_image(ref + image * ref_stride, ref_lanes, pert + p * pert_stride, pert_lanes,
                                           ys, rows, params);
  }
}

}  // namespace

cudaError_t distortion_scores(const float* ref, int64_t images, int ref_lanes, const float* pert, int pert_lanes,
                              const float* ys, int rows, lanes::DistortionParams params, float* out, int64_t pairs,
                              cudaStream_t stream) {
  if (pairs == 0) return cudaSuccess;
  int64_t blocks = (pairs + kThreads - 1) / kThreads;
  if (blocks > 65535) blocks = 65535;
  distortion_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(ref, images, ref_lanes, pert, pert_lanes,
                                                                           ys, rows, params, out, pairs);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace selfocus
