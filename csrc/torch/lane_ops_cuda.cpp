// CUDA implementations of the selfocus lane ops. Compiled only when torch has CUDA.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../cuda/lane_kernels.cuh"
#include "lane_args.h"

namespace selfocus {
namespace glue {
namespace {

at::Tensor lane_distortion_cuda(const at::Tensor& ref, const at::Tensor& pert, const at::Tensor& ys, double width,
                                double penalty, double min_iou) {
  const c10::cuda::CUDAGuard guard(ref.device());
  const DistortionCall c = prepare_distortion(ref, pert, ys, width, penalty, min_iou);
  const int64_t draws = c.pert.size(0), images = c.ref.size(0);
  at::Tensor out = at::empty({draws, images}, c.ref.options());
  const cudaError_t err = cuda::distortion_scores(
      c.ref.data_ptr<float>(), images, static_cast<int>(c.ref.size(1)), c.pert.data_ptr<float>(),
      static_cast<int>(c.pert.size(2)), c.ys.data_ptr<float>(), static_cast<int>(c.ref.size(2)), c.params,
      out.data_ptr<float>(), draws * images, c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "lane_distortion: CUDA kernel launch failed: ", cudaGetErrorString(err));
  return c.batched ? out : out.squeeze(0);
}

}  // namespace

TORCH_LIBRARY_IMPL(selfocus, CUDA, m) { m.impl("lane_distortion", &lane_distortion_cuda); }

}  // namespace glue
}  // namespace selfocus
