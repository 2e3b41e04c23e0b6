// CUDA launchers of the lane ops. No ATen: raw device pointers, sizes and a stream.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../core/lane_distortion.h"

namespace selfocus {
namespace cuda {

// ref [images, ref_lanes, rows], pert [pairs / images, images, pert_lanes, rows] (float32, contiguous),
// ys [rows]; writes out[pairs]. One thread scores one (draw, image) pair.
cudaError_t distortion_scores(const float* ref, int64_t images, int ref_lanes, const float* pert, int pert_lanes,
                              const float* ys, int rows, lanes::DistortionParams params, float* out, int64_t pairs,
                              cudaStream_t stream);

}  // namespace cuda
}  // namespace selfocus
