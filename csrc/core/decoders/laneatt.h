// The LaneATT: anchor proposals with their line NMS; the shared parts are in common.h.
#pragma once

#include "common.h"

namespace selfocus {
namespace decode {

struct LaneATTParams {
  float threshold = 0.5f;
  float nms_dist = 12.0f;
  int top_k = 4;
  int width = 400;  // input width
};

// ---- LaneATT -------------------------------------------------------------------------------------------
struct LaneATTScratch {
  int *order, *tmp;
  float *lane_xs, *kept;
  LaneSpan* spans;
  float *px, *py;
  EmitScratch emit;
  static SF_HDF LaneATTScratch carve(Carver& c, int n, int rows, int top_k) {
    LaneATTScratch s;
    s.order = c.take<int>(n);
    s.tmp = c.take<int>(n);
    s.lane_xs = c.take<float>(rows);
    s.kept = c.take<float>(static_cast<int64_t>(top_k) * rows);
    s.spans = c.take<LaneSpan>(top_k);
    s.px = c.take<float>(static_cast<int64_t>(top_k) * rows);
    s.py = c.take<float>(static_cast<int64_t>(top_k) * rows);
    s.emit = EmitScratch::carve(c, top_k, rows);
    return s;
  }
};

SF_HDF size_t laneatt_workspace(int n, int rows, int top_k) { return workspace_of<LaneATTScratch>(n, rows, top_k); }

// score [N] foreground probabilities, reg [N, 1 + R] (length in rows, x offsets), anchor_xs [N, R] (NaN below
// an anchor's start), row_ys [R] (input rows of the offsets).
SF_HDF void laneatt_item(const float* score, const float* reg, const float* anchor_xs, const float* row_ys, int n,
                        int rows, const LaneATTParams& p, const InputMap& map, const float* ys, int frame_rows,
                        int max_lanes, float* xs, float* scores, unsigned char* workspace) {
  Carver c{workspace, 0};
  const int top_k = p.top_k > 0 ? p.top_k : 0;
  LaneATTScratch s = LaneATTScratch::carve(c, n, rows, top_k);
  int m = 0;
  for (int i = 0; i < n; ++i)
    if (score[i] > p.threshold) s.order[m++] = i;
  stable_sort(s.order, s.tmp, m, [&](int a, int b) { return score[a] > score[b]; });
  const int stride = 1 + rows;
  int kept = 0, used = 0;
  for (int t = 0; t < m; ++t) {
    const int i = s.order[t];
    if (!(score[i] > p.threshold) || kept >= top_k) break;
    const float* ax = anchor_xs + static_cast<int64_t>(i) * rows;
    int k0 = -1;
    for (int r = 0; r < rows; ++r)
      if (ax[r] == ax[r]) {
        k0 = r;
        break;
      }
    if (k0 < 0) continue;
    // rows covered from the start; NaN covers none, a length beyond the rows (inf included) all of them
    const float len = reg[static_cast<int64_t>(i) * stride];
    const float len0 = len > 0.0f ? len : 0.0f;
    const int span = len0 >= static_cast<float>(rows) ? rows : static_cast<int>(nearbyintf(len0));
    const int k1 = rows < k0 + span ? rows : k0 + span;
    int valid = 0;
    for (int r = 0; r < rows; ++r) s.lane_xs[r] = nan_value();
    for (int r = k0; r < k1; ++r) {
      const float x = ax[r] + reg[static_cast<int64_t>(i) * stride + 1 + r];
      if (is_finite(x) && x >= 0.0f && x <= static_cast<float>(p.width - 1)) {
        s.lane_xs[r] = x;
        ++valid;
      }
    }
    if (valid < 2) continue;
    bool dup = false;
    for (int q = 0; q < kept && !dup; ++q) {
      const float* other = s.kept + static_cast<int64_t>(q) * rows;
      double sum = 0.0;
      int cnt = 0;
      for (int r = 0; r < rows; ++r) {
        if (s.lane_xs[r] == s.lane_xs[r] && other[r] == other[r]) {
          sum += fabs(static_cast<double>(s.lane_xs[r]) - other[r]);
          ++cnt;
        }
      }
      dup = cnt > 0 && sum / cnt < p.nms_dist;
    }
    if (dup) continue;
    int count = 0;
    for (int r = 0; r < rows; ++r) {
      if (s.lane_xs[r] == s.lane_xs[r]) {
        s.px[used + count] = s.lane_xs[r];
        s.py[used + count] = row_ys[r];
        ++count;
      }
    }
    for (int r = 0; r < rows; ++r) s.kept[static_cast<int64_t>(kept) * rows + r] = s.lane_xs[r];
    s.spans[kept++] = {used, count, score[i]};
    used += count;
  }
  emit(s.spans, kept, s.px, s.py, map, ys, frame_rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
