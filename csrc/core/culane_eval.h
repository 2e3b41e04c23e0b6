// Per-image counting of the CULane metric (no torch): lane IoUs on rasterised masks, then the one-to-one
// matching, either the official tool's (the default) or an exact maximum-total-IoU assignment.
#pragma once

#include <cstdint>

#include "culane_raster.h"

namespace selfocus {
namespace culane {

// The exact matcher works on fixed-size arrays (assignment.h). The official one has no fixed limit; 1024
// lanes (about 120 MB of masks) bounds the memory one image can take.
constexpr int kMaxLanesExact = 64;
constexpr int kMaxLanesOfficial = 1024;

struct LaneView {
  const Point* pts;
  int n;
};

enum class Matcher {
  kOfficial,  // hungarianGraph.hpp of the official tool, reproduced (see official_match)
  kExact,     // maximum total IoU (Kuhn-Munkres with potentials); 0/0 IoUs count as 0
};

struct MetricParams {
  int width;       // canvas width (1640 for CULane)
  int height;      // canvas height (590)
  int lane_width;  // line thickness in px (30)
  Matcher matcher;
};

// The official tool's matching of a similarity matrix [rows, cols] (row-major): a Kuhn-Munkres that
// tests equality with a 1e-2 tolerance, run with the side that has fewer lanes on the left. NaN entries
// never compare true, so they are never chosen, and a row whose entries are all NaN ends the matching
// there (later rows stay unmatched), as in the official tool. row_match[r] = matched column or -1.
void official_match(const double* sim, int rows, int cols, int* row_match);

// iou: [n_gt, n_pred] row-major, IoU of the rasterised lanes (0 when a lane has fewer than 2 points, NaN
// when neither lane draws a pixel); gt_match[g]: the prediction matched to GT lane g, or -1. A match
// counts as a true positive when its IoU exceeds the threshold. With the exact matcher, n_gt and n_pred
// are at most kMaxLanesExact.
void match_image(const LaneView* gt, int n_gt, const LaneView* pred, int n_pred, MetricParams params, double* iou,
                 int64_t* gt_match);

}  // namespace culane
}  // namespace selfocus
