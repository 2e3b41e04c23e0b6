#include "culane_eval.h"

#include <cmath>
#include <vector>

#include "assignment.h"

namespace selfocus {
namespace culane {
namespace {

// The official hungarianGraph.hpp state: left vertices (rows of mat) with labels lw, right ones with rw.
struct EqualityGraph {
  const std::vector<double>& mat;  // [left, right]
  int left, right;
  std::vector<double> lw, rw;
  std::vector<int> left_match, right_match;
  std::vector<char> left_used, right_used;

  double at(int u, int v) const { return mat[static_cast<size_t>(u) * right + v]; }

  // Depth-first search for an augmenting path over "equal" edges (|lw + rw - w| < 1e-2).
  bool augment(int u) {
    left_used[u] = 1;
    for (int v = 0; v < right; ++v) {
      if (!right_used[v] && std::fabs(lw[u] + rw[v] - at(u, v)) < 1e-2) {
        right_used[v] = 1;
        if (right_match[v] == -1 || augment(right_match[v])) {
          right_match[v] = u;
          left_match[u] = v;
          return true;
        }
      }
    }
    return false;
  }

  void run() {
    left_match.assign(left, -1);
    right_match.assign(right, -1);
    rw.assign(right, 0.0);
    lw.assign(left, -1e5);
    for (int u = 0; u < left; ++u)
      for (int v = 0; v < right; ++v)
        if (lw[u] < at(u, v)) lw[u] = at(u, v);
    for (int u = 0; u < left; ++u) {
      // Each failed search makes at least one more right vertex reachable, so right + 1 rounds suffice;
      // the (looser) bound only guards against a loop the official code could not leave either.
      for (int round = 0; round < 2 * right + 8; ++round) {
        left_used.assign(left, 0);
        right_used.assign(right, 0);
        if (augment(u)) break;
        double d = 1e10;
        for (int i = 0; i < left; ++i) {
          if (!left_used[i]) continue;
          for (int j = 0; j < right; ++j) {
            const double slack = lw[i] + rw[j] - at(i, j);
            if (!right_used[j] && slack < d) d = slack;  // std::min(d, NaN) keeps d, as here
          }
        }
        if (d == 1e10) return;  // no finite slack: the official matching stops here, for every later row
        for (int i = 0; i < left; ++i)
          if (left_used[i]) lw[i] -= d;
        for (int j = 0; j < right; ++j)
          if (right_used[j]) rw[j] += d;
      }
    }
  }
};

}  // namespace

void official_match(const double* sim, int rows, int cols, int* row_match) {
  for (int r = 0; r < rows; ++r) row_match[r] = -1;
  if (rows == 0 || cols == 0) return;
  const bool exchange = rows > cols;  // the side with fewer lanes goes on the left
  const int left = exchange ? cols : rows, right = exchange ? rows : cols;
  std::vector<double> mat(static_cast<size_t>(left) * right);
  for (int i = 0; i < left; ++i)
    for (int j = 0; j < right; ++j)
      mat[static_cast<size_t>(i) * right + j] = exchange ? sim[j * cols + i] : sim[i * cols + j];
  EqualityGraph g{mat, left, right, {}, {}, {}, {}, {}, {}};
  g.run();
  const std::vector<int>& m = exchange ? g.right_match : g.left_match;
  for (int r = 0; r < rows; ++r) row_match[r] = m[r];
}

void match_image(const LaneView* gt, int n_gt, const LaneView* pred, int n_pred, MetricParams params, double* iou,
                 int64_t* gt_match) {
  for (int g = 0; g < n_gt; ++g) gt_match[g] = -1;
  if (n_gt == 0 || n_pred == 0) return;  // all predictions are false positives, all GT lanes misses
  std::vector<Mask> gt_masks, pred_masks;
  std::vector<int64_t> gt_area(n_gt, 0), pred_area(n_pred, 0);
  gt_masks.reserve(n_gt);
  pred_masks.reserve(n_pred);
  for (int g = 0; g < n_gt; ++g) {
    gt_masks.emplace_back(params.width, params.height);
    draw_lane(gt_masks.back(), gt[g].pts, gt[g].n, params.lane_width);
    gt_area[g] = gt_masks.back().count();
  }
  for (int p = 0; p < n_pred; ++p) {
    pred_masks.emplace_back(params.width, params.height);
    draw_lane(pred_masks.back(), pred[p].pts, pred[p].n, params.lane_width);
    pred_area[p] = pred_masks.back().count();
  }
  for (int g = 0; g < n_gt; ++g) {
    for (int p = 0; p < n_pred; ++p) {
      double v = 0.0;  // a lane of fewer than 2 points is similar to nothing (the official rule)
      if (gt[g].n >= 2 && pred[p].n >= 2) {
        const int64_t inter = gt_masks[g].intersection(pred_masks[p]);
        const int64_t uni = gt_area[g] + pred_area[p] - inter;
        v = static_cast<double>(inter) / static_cast<double>(uni);  // 0/0 = NaN when neither draws a pixel
      }
      iou[g * n_pred + p] = v;
    }
  }
  std::vector<int> match(n_gt, -1);
  if (params.matcher == Matcher::kOfficial) {
    official_match(iou, n_gt, n_pred, match.data());
  } else {
    double w[kMaxLanesExact * kMaxLanesExact];
    for (int i = 0; i < n_gt * n_pred; ++i) w[i] = std::isnan(iou[i]) ? 0.0 : iou[i];
    lanes::max_weight_matching<kMaxLanesExact>(w, n_gt, n_pred, match.data());
  }
  for (int g = 0; g < n_gt; ++g) gt_match[g] = match[g];
}

}  // namespace culane
}  // namespace selfocus
