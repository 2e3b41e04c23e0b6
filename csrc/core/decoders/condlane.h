// The CondLaneNet: proposal points, dynamic-convolution row locations and their range; the shared parts are in common.h.
#pragma once

#include "common.h"

namespace selfocus {
namespace decode {

struct CondLaneParams {
  float threshold = 0.5f;        // proposal probability of a lane start
  float range_threshold = 0.5f;  // probability that a row belongs to the lane
  float merge_dist = 2.0f;       // proposals closer than this (proposal cells) are one lane
  int max_seeds = 16;            // lanes decoded per image, strongest proposals first
  int stride = 8;                // the shared features' stride in input pixels
};

// ---- CondLaneNet ---------------------------------------------------------------------------------------
struct CondLaneScratch {
  int *cand, *tmp, *kept;
  double *wl, *wo;  // the proposal's location and offset conv weights [C + 3]
  double* logits;   // one row's location logits [w8]
  LaneSpan* spans;
  float *px, *py;
  EmitScratch emit;
  static SF_HDF CondLaneScratch carve(Carver& c, int cells, int max_seeds, int h8, int w8, int C) {
    CondLaneScratch s;
    s.cand = c.take<int>(cells);
    s.tmp = c.take<int>(cells);
    s.kept = c.take<int>(max_seeds);
    s.wl = c.take<double>(C + 3);
    s.wo = c.take<double>(C + 3);
    s.logits = c.take<double>(w8);
    s.spans = c.take<LaneSpan>(max_seeds);
    s.px = c.take<float>(static_cast<int64_t>(max_seeds) * h8);
    s.py = c.take<float>(static_cast<int64_t>(max_seeds) * h8);
    s.emit = EmitScratch::carve(c, max_seeds, h8);
    return s;
  }
};

SF_HDF size_t condlane_workspace(int h16, int w16, int max_seeds, int h8, int w8, int C) {
  return workspace_of<CondLaneScratch>(h16 * w16, max_seeds, h8, w8, C);
}

// One dynamic 1x1 conv at feature pixel (y, x): weights w[0..C) on the features, w[C], w[C+1] on the
// pixel's position relative to the proposal (in units of the feature map's width and height), bias w[C+2].
// Accumulated in double, so that the reference's float64 numpy gives the same value to ~1e-15.
SF_HDF double condlane_conv(const double* w, const float* feat, int C, int64_t plane, int64_t at, double rx,
                            double ry) {
  double acc = 0.0;
  for (int k = 0; k < C; ++k) acc += w[k] * static_cast<double>(feat[k * plane + at]);
  return acc + w[C] * rx + w[C + 1] * ry + w[C + 2];
}

// proposal [h16, w16] lane-start probabilities, params [2 (C + 3), h16, w16] (the location conv's C + 3
// weights, then the offset conv's), features [C, h8, w8], range [h8, h16, w16] row probabilities per
// proposal cell. Proposals: local maxima of a 3x3 window above the threshold, strongest first (ties: lower
// cell index), one kept per merge_dist. Per kept proposal and per row its range marks: the location conv's
// logits, softmax over columns, the expected column rounded to the nearest column c, plus the offset conv
// at (row, c); points in input pixels, the lane's score its proposal probability.
SF_HDF void condlane_item(const float* proposal, const float* params, const float* features, const float* range,
                          int C, int h16, int w16, int h8, int w8, const CondLaneParams& p, const InputMap& map,
                          const float* ys, int rows, int max_lanes, float* xs, float* scores,
                          unsigned char* workspace) {
  Carver c{workspace, 0};
  const int cells = h16 * w16;
  CondLaneScratch s = CondLaneScratch::carve(c, cells, p.max_seeds, h8, w8, C);
  int n_cand = 0;
  for (int r = 0; r < h16; ++r)
    for (int q = 0; q < w16; ++q) {
      const float v = proposal[r * w16 + q];
      if (!(v > p.threshold)) continue;
      bool peak = true;
      for (int dr = -1; dr <= 1 && peak; ++dr)
        for (int dq = -1; dq <= 1; ++dq) {
          const int rr = r + dr, qq = q + dq;
          if (rr < 0 || rr >= h16 || qq < 0 || qq >= w16) continue;
          if (proposal[rr * w16 + qq] > v) { peak = false; break; }
        }
      if (peak) s.cand[n_cand++] = r * w16 + q;
    }
  stable_sort(s.cand, s.tmp, n_cand, [&](int a, int b) { return proposal[a] > proposal[b]; });
  const double md2 = static_cast<double>(p.merge_dist) * static_cast<double>(p.merge_dist);
  int n_kept = 0;
  for (int i = 0; i < n_cand && n_kept < p.max_seeds; ++i) {
    const int r = s.cand[i] / w16, q = s.cand[i] % w16;
    bool near = false;
    for (int j = 0; j < n_kept && !near; ++j) {
      const double dr = r - s.kept[j] / w16, dq = q - s.kept[j] % w16;
      near = dr * dr + dq * dq < md2;
    }
    if (!near) s.kept[n_kept++] = s.cand[i];
  }
  const int64_t plane = static_cast<int64_t>(h8) * w8;
  const double sx = static_cast<double>(w8) / w16, sy = static_cast<double>(h8) / h16;
  const int n_w = C + 3;
  double *wl = s.wl, *wo = s.wo;
  int n_lanes = 0, used = 0;
  for (int i = 0; i < n_kept; ++i) {
    const int cell = s.kept[i];
    const int r0 = cell / w16, q0 = cell % w16;
    const double xp = (q0 + 0.5) * sx - 0.5, yp = (r0 + 0.5) * sy - 0.5;  // the proposal on the feature grid
    for (int k = 0; k < n_w; ++k) {
      wl[k] = static_cast<double>(params[static_cast<int64_t>(k) * cells + cell]);
      wo[k] = static_cast<double>(params[static_cast<int64_t>(n_w + k) * cells + cell]);
    }
    int count = 0;
    for (int y = 0; y < h8; ++y) {
      if (!(range[static_cast<int64_t>(y) * cells + cell] > p.range_threshold)) continue;
      const double ry = (y - yp) / h8;
      // condlane_conv for every column of the row, channels outer so the inner loop runs along the row
      // (each column still sums its channels in order 0..C-1: the same values)
      for (int x = 0; x < w8; ++x) s.logits[x] = 0.0;
      for (int k = 0; k < C; ++k) {
        const float* row = features + k * plane + static_cast<int64_t>(y) * w8;
        const double wk = wl[k];
        for (int x = 0; x < w8; ++x) s.logits[x] += wk * static_cast<double>(row[x]);
      }
      double mx = -INFINITY;
      for (int x = 0; x < w8; ++x) {
        const double l = s.logits[x] + wl[C] * ((x - xp) / w8) + wl[C + 1] * ry + wl[C + 2];
        s.logits[x] = l;
        mx = l > mx ? l : mx;
      }
      double den = 0.0, num = 0.0;
      for (int x = 0; x < w8; ++x) {
        const double e = exp(s.logits[x] - mx);
        den += e;
        num += e * x;
      }
      const double expected = num / den;
      if (!(expected >= 0.0 && expected <= w8 - 1)) continue;  // NaN or inf logits: no point on this row
      const int col = static_cast<int>(floor(expected + 0.5));
      const double off = condlane_conv(wo, features, C, plane, static_cast<int64_t>(y) * w8 + col, (col - xp) / w8, ry);
      s.px[used + count] = static_cast<float>((col + off + 0.5) * p.stride - 0.5);
      s.py[used + count] = static_cast<float>((y + 0.5) * p.stride - 0.5);
      ++count;
    }
    if (count >= 2) {
      s.spans[n_lanes++] = {used, count, proposal[cell]};
      used += count;
    }
  }
  emit(s.spans, n_lanes, s.px, s.py, map, ys, rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
