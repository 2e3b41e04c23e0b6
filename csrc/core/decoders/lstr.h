// The LSTR: per-query polynomial curves; the shared parts are in common.h.
#pragma once

#include "common.h"

namespace selfocus {
namespace decode {

struct LSTRParams {
  float threshold = 0.95f;
  int max_keep = 4;               // the most probable lanes kept
  int width = 400, height = 160;  // input size
};

// ---- LSTR ----------------------------------------------------------------------------------------------
struct LSTRScratch {
  unsigned char* kept;
  LaneSpan* spans;
  float *px, *py;
  EmitScratch emit;
  static SF_HDF LSTRScratch carve(Carver& c, int queries, int n_rows) {
    LSTRScratch s;
    s.kept = c.take<unsigned char>(queries);
    s.spans = c.take<LaneSpan>(queries);
    s.px = c.take<float>(static_cast<int64_t>(queries) * n_rows);
    s.py = c.take<float>(static_cast<int64_t>(queries) * n_rows);
    s.emit = EmitScratch::carve(c, queries, n_rows);
    return s;
  }
};

SF_HDF size_t lstr_workspace(int queries, int n_rows) { return workspace_of<LSTRScratch>(queries, n_rows); }

// prob [Q] lane probabilities, curves [Q, 8] (upper end, lower end, k, f, m, n, b, b' in normalised input
// coordinates), sample_ys [n_rows] normalised input rows. The max_keep most probable queries above the
// threshold (ties: lower index first) are sampled at the rows strictly between their ends where
// x = k/(y-f)^2 + m/(y-f) + n + b*y - b' lies in [0, 1] (float32, left to right, as the reference).
SF_HDF void lstr_item(const float* prob, const float* curves, int queries, const float* sample_ys, int n_rows,
                      const LSTRParams& p, const InputMap& map, const float* ys, int rows, int max_lanes, float* xs,
                      float* scores, unsigned char* workspace) {
  Carver c{workspace, 0};
  LSTRScratch s = LSTRScratch::carve(c, queries, n_rows);
  for (int q = 0; q < queries; ++q) s.kept[q] = 0;
  for (int n = 0; n < p.max_keep; ++n) {
    int best = -1;
    for (int q = 0; q < queries; ++q)
      if (!s.kept[q] && prob[q] > p.threshold && (best < 0 || prob[q] > prob[best])) best = q;
    if (best < 0) break;
    s.kept[best] = 1;
  }
  const float W = static_cast<float>(p.width), H = static_cast<float>(p.height);
  int n_lanes = 0, used = 0;
  for (int q = 0; q < queries; ++q) {
    if (!s.kept[q]) continue;
    const float* cv = curves + static_cast<int64_t>(q) * 8;
    const float upper = cv[0], lower = cv[1], k = cv[2], f = cv[3], m = cv[4], n = cv[5], b = cv[6], b2 = cv[7];
    int count = 0;
    for (int r = 0; r < n_rows; ++r) {
      const float y = sample_ys[r];
      const float d = y - f;
      const float x = k / (d * d) + m / d + n + b * y - b2;
      if (!is_finite(x) || !(x >= 0.0f) || !(x <= 1.0f) || !(y > upper) || !(y < lower)) continue;
      s.px[used + count] = x * W;
      s.py[used + count] = y * H;
      ++count;
    }
    if (count >= 2) {
      s.spans[n_lanes++] = {used, count, prob[q]};
      used += count;
    }
  }
  emit(s.spans, n_lanes, s.px, s.py, map, ys, rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
