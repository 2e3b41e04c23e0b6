// Per-image matching of the CULane metric (no torch): lane IoUs on rasterised masks, then the one-to-one
// matching that maximises total IoU, as the official evaluation tool does.
#pragma once

#include <cstdint>

#include "culane_raster.h"

namespace selfocus {
namespace culane {

constexpr int kMaxLanesPerImage = 64;

struct LaneView {
  const Point* pts;
  int n;
};

struct MetricParams {
  int width;       // canvas width (1640 for CULane)
  int height;      // canvas height (590)
  int lane_width;  // line thickness in px (30)
};

// iou: [n_gt, n_pred] row-major; gt_match[g]: the pred lane matched to GT lane g, or -1.
// n_gt, n_pred <= kMaxLanesPerImage.
void match_image(const LaneView* gt, int n_gt, const LaneView* pred, int n_pred, MetricParams params, float* iou,
                 int64_t* gt_match);

}  // namespace culane
}  // namespace selfocus
