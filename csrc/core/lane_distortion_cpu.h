// Batched Lane Distortion Score on the CPU (no torch).
#pragma once

#include <cstdint>

#include "lane_distortion.h"

namespace selfocus {
namespace lanes {

// ref [images, ref_lanes, rows]; pert [draws, images, pert_lanes, rows] (draws = 1 for a plain batch);
// out [draws, images]. Computes the pairs p in [begin, end) of the flattened (draw, image) index, each
// perturbed set against the reference of its image (the reference is shared by all draws).
void distortion_scores(const float* ref, int64_t images, int ref_lanes, const float* pert, int pert_lanes,
                       const float* ys, int rows, DistortionParams params, float* out, int64_t begin, int64_t end);

}  // namespace lanes
}  // namespace selfocus
