#include "culane_eval.h"

#include <vector>

#include "assignment.h"

namespace selfocus {
namespace culane {

void match_image(const LaneView* gt, int n_gt, const LaneView* pred, int n_pred, MetricParams params, float* iou,
                 int64_t* gt_match) {
  // Lanes with fewer than two points have similarity 0 with everything (the official tool's rule).
  std::vector<Mask> gt_masks, pred_masks;
  std::vector<int64_t> gt_area(n_gt, 0), pred_area(n_pred, 0);
  gt_masks.reserve(n_gt);
  pred_masks.reserve(n_pred);
  for (int g = 0; g < n_gt; ++g) {
    gt_masks.emplace_back(params.width, params.height);
    if (gt[g].n >= 2) draw_lane(gt_masks.back(), gt[g].pts, gt[g].n, params.lane_width);
    gt_area[g] = gt_masks.back().count();
  }
  for (int p = 0; p < n_pred; ++p) {
    pred_masks.emplace_back(params.width, params.height);
    if (pred[p].n >= 2) draw_lane(pred_masks.back(), pred[p].pts, pred[p].n, params.lane_width);
    pred_area[p] = pred_masks.back().count();
  }
  for (int g = 0; g < n_gt; ++g) {
    for (int p = 0; p < n_pred; ++p) {
      float v = 0.0f;
      if (gt[g].n >= 2 && pred[p].n >= 2) {
        const int64_t inter = gt_masks[g].intersection(pred_masks[p]);
        const int64_t uni = gt_area[g] + pred_area[p] - inter;
        v = uni > 0 ? static_cast<float>(static_cast<double>(inter) / static_cast<double>(uni)) : 0.0f;
      }
      iou[g * n_pred + p] = v;
    }
  }
  int match[kMaxLanesPerImage];
  lanes::max_weight_matching<kMaxLanesPerImage>(iou, n_gt, n_pred, match);
  for (int g = 0; g < n_gt; ++g) gt_match[g] = match[g];
}

}  // namespace culane
}  // namespace selfocus
