#include "lane_distortion_cpu.h"

namespace selfocus {
namespace lanes {

void distortion_scores(const float* ref, int64_t images, int ref_lanes, const float* pert, int pert_lanes,
                       const float* ys, int rows, DistortionParams params, float* out, int64_t begin, int64_t end) {
  const int64_t ref_stride = static_cast<int64_t>(ref_lanes) * rows;
  const int64_t pert_stride = static_cast<int64_t>(pert_lanes) * rows;
  for (int64_t p = begin; p < end; ++p) {
    const int64_t image = p % images;
    out[p] = distortion_score_image(ref + image * ref_stride, ref_lanes, pert + p * pert_stride, pert_lanes, ys,
                                    rows, params);
  }
}

}  // namespace lanes
}  // namespace selfocus
