// The BezierLaneNet: cubic Bezier curves sampled on the rows; the shared parts are in common.h.
#pragma once

#include "common.h"

namespace selfocus {
namespace decode {

struct BezierParams {
  float threshold = 0.5f;
  int window = 9;
  int samples = 50;
  int width = 400, height = 160;  // input size
};

// ---- Bezier --------------------------------------------------------------------------------------------
struct BezierScratch {
  LaneSpan* spans;
  float *px, *py;
  EmitScratch emit;
  static SF_HDF BezierScratch carve(Carver& c, int queries, int samples) {
    BezierScratch s;
    s.spans = c.take<LaneSpan>(queries);
    s.px = c.take<float>(static_cast<int64_t>(queries) * samples);
    s.py = c.take<float>(static_cast<int64_t>(queries) * samples);
    s.emit = EmitScratch::carve(c, queries, samples);
    return s;
  }
};

SF_HDF size_t bezier_workspace(int queries, int samples) { return workspace_of<BezierScratch>(queries, samples); }

// prob [Q] existence probabilities, curves [Q, 4, 2] (normalised input coordinates).
SF_HDF void bezier_item(const float* prob, const float* curves, int queries, const BezierParams& p, const InputMap& map,
                       const float* ys, int rows, int max_lanes, float* xs, float* scores, unsigned char* workspace) {
  Carver c{workspace, 0};
  BezierScratch s = BezierScratch::carve(c, queries, p.samples);
  const int half = p.window / 2;
  int n_lanes = 0, used = 0;
  for (int q = 0; q < queries; ++q) {
    float m = -INFINITY;
    const int j0 = q - half > 0 ? q - half : 0;
    const int j1 = q + half < queries - 1 ? q + half : queries - 1;
    for (int j = j0; j <= j1; ++j) m = prob[j] > m ? prob[j] : m;
    if (!(prob[q] > p.threshold) || prob[q] != m) continue;
    const float* cp = curves + static_cast<int64_t>(q) * 8;
    int count = 0;
    for (int smp = 0; smp < p.samples; ++smp) {
      // Bernstein basis in double, rounded to float32 (as the reference)
      const double t = p.samples > 1 ? static_cast<double>(smp) / (p.samples - 1) : 0.0;
      const double u = 1.0 - t;
      const double b[4] = {u * u * u, 3 * t * u * u, 3 * t * t * u, t * t * t};
      float x = 0.0f, y = 0.0f;
      for (int k = 0; k < 4; ++k) {
        const float bk = static_cast<float>(b[k]);
        x += bk * cp[2 * k];
        y += bk * cp[2 * k + 1];
      }
      x *= static_cast<float>(p.width);
      y *= static_cast<float>(p.height);
      if (x >= 0.0f && x <= static_cast<float>(p.width - 1) && y >= 0.0f && y <= static_cast<float>(p.height - 1)) {
        s.px[used + count] = x;
        s.py[used + count] = y;
        ++count;
      }
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
