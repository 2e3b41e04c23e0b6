// pytorch-auto-drive's BezierLaneNet post-processing: queries above the threshold that are the first maximum
// of their window, pruned to the lane limit; each kept cubic Bezier curve sampled at `samples` evenly spaced
// t (the Bernstein basis as the implementation builds it, in double) and scaled to the frame. Points in frame
// pixels, double.
#pragma once

#include "prune.h"

namespace selfocus {
namespace decode {

struct BezierPublishedParams {
  float threshold = 0.95f;
  int window = 9;
  int max_lanes = 4;  // the pruning limit
  int samples = 50;
  int frame_width = 1640, frame_height = 590;
};

struct BezierPublishedScratch {
  unsigned char* keep;
  double* work;
  double* basis;  // [samples, 4]
  LaneSpan* spans;
  double *px, *py;
  EmitScratch emit;
  static SF_HDF BezierPublishedScratch carve(Carver& c, int queries, int samples) {
    BezierPublishedScratch s;
    s.keep = c.take<unsigned char>(queries);
    s.work = c.take<double>(queries);
    s.basis = c.take<double>(4 * static_cast<int64_t>(samples));
    s.spans = c.take<LaneSpan>(queries);
    s.px = c.take<double>(static_cast<int64_t>(queries) * samples);
    s.py = c.take<double>(static_cast<int64_t>(queries) * samples);
    s.emit = EmitScratch::carve(c, queries, samples);
    return s;
  }
};

SF_HDF size_t bezier_published_workspace(int queries, int samples) {
  return workspace_of<BezierPublishedScratch>(queries, samples);
}

// numpy.linspace(0, 1, n)[i]: i * (1 / (n - 1)), the last one exactly 1.
SF_HDF double unit_linspace(int i, int n) {
  if (n == 1) return 0.0;
  return i == n - 1 ? 1.0 : static_cast<double>(i) * (1.0 / static_cast<double>(n - 1));
}

// prob [Q] existence probabilities (sigmoid of the logits, by the caller), curves [Q, 4, 2] (normalised x, y).
// A query is kept when its probability exceeds the threshold and it is the first maximum of the window
// centred on it (max pooling's index rule: a NaN in the window is the maximum).
SF_HDF void bezier_published_item(const float* prob, const float* curves, int queries, const BezierPublishedParams& p,
                                  const float* ys, int rows, int max_lanes, float* xs, float* scores,
                                  unsigned char* workspace) {
  Carver c{workspace, 0};
  BezierPublishedScratch s = BezierPublishedScratch::carve(c, queries, p.samples);
  const int half = p.window > 0 ? (p.window - 1) / 2 : 0;
  for (int q = 0; q < queries; ++q) {
    bool keep = prob[q] > p.threshold;
    if (keep && p.window > 0) {
      // the window of max_pool1d(kernel = window, padding = half) whose output is at q
      const int j0 = q - half > 0 ? q - half : 0;
      const int j1 = q - half + p.window - 1 < queries - 1 ? q - half + p.window - 1 : queries - 1;
      int arg = -1;
      float m = 0.0f;
      for (int j = j0; j <= j1; ++j) {
        const float v = prob[j];
        if (arg < 0 || v > m || v != v) {
          m = v;
          arg = j;
        }
      }
      keep = arg == q;
    }
    // the implementation prunes np.where(keep, prob, 0) with threshold 0: a kept zero probability goes
    s.keep[q] = keep && prob[q] > 0.0f;
  }
  prune_lanes(prob, s.keep, s.work, queries, p.max_lanes);
  for (int i = 0; i < p.samples; ++i) {
    const double t = unit_linspace(i, p.samples);
    for (int k = 0; k < 4; ++k) {
      const double binom = (k == 0 || k == 3) ? 1.0 : 3.0;
      s.basis[4 * i + k] = pow(t, static_cast<double>(k)) * pow(1.0 - t, static_cast<double>(3 - k)) * binom;
    }
  }
  const double W = static_cast<double>(p.frame_width), H = static_cast<double>(p.frame_height);
  int n_lanes = 0, used = 0;
  for (int q = 0; q < queries; ++q) {
    if (!s.keep[q]) continue;
    const float* cp = curves + static_cast<int64_t>(q) * 8;
    for (int i = 0; i < p.samples; ++i) {
      const double* b = s.basis + 4 * i;
      double x = 0.0, y = 0.0;
      for (int k = 0; k < 4; ++k) {
        x += b[k] * static_cast<double>(cp[2 * k]);
        y += b[k] * static_cast<double>(cp[2 * k + 1]);
      }
      s.px[used + i] = x * W;
      s.py[used + i] = y * H;
    }
    s.spans[n_lanes++] = {used, p.samples, prob[q]};
    used += p.samples;
  }
  emit_frame(s.spans, n_lanes, s.px, s.py, p.frame_width, ys, rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
