// The published anchor-based post-processings: CLRNet's and LaneATT's (pytorch-auto-drive's and the official
// layout). Proposals above the score threshold go through the published line NMS (csrc/core/line_nms.h's
// arithmetic, here with a caller-provided workspace so that a CUDA thread can run it), each kept lane's rows
// are cut as the implementations cut them (`kept_rows`), and the lane is written as its points (LaneATT in
// pytorch-auto-drive) or as the cubic spline through them read on the written rows (CLRNet, the official
// LaneATT). Points in frame pixels, double.
//
// The spline is scipy's InterpolatedUnivariateSpline with k = min(3, n - 1): for n >= 4 points the
// not-a-knot cubic interpolant (FITPACK's knots at the points but the second and the second last), for 3 a
// parabola, for 2 a line; it is unique, so computing it here (second-derivative form, a tridiagonal solve)
// gives FITPACK's curve to float64 rounding, not to the bit.
#pragma once

#include "../../line_nms.h"
#include "../common.h"

namespace selfocus {
namespace decode {

// line_nms.h's greedy suppression, with the positions of (start, length, first x) in a proposal.
SF_HDF int line_nms_ws(const float* proposals, int count, int width, const int* order, float threshold, int top_k,
                       int* keep, unsigned char* removed, int start_i, int length_i, int xs_i) {
  nms::ProposalLayout layout;
  layout.start = start_i;
  layout.length = length_i;
  layout.xs = xs_i;
  return nms::greedy_suppress<int>(proposals, count, width, order, threshold, top_k, keep, removed, layout);
}

// The implementations' row cut of one lane (xs normalised, bottom row first, n rows; changed in place, as the
// reference's numpy slicing): rows after `end` dropped (Python slicing: a negative end + 1 counts from the
// back), rows below `start` kept only while the lane stays inside [0, 1] going down from `start`. Dropped
// rows become -2; a row is kept when its value is >= 0.
SF_HDF void kept_rows(float* xs, int n, int start, int end) {
  // a head row j < start is "inside" when every row j .. start - 1 lies in [0, 1] (on the values before the
  // cut): the rows up to the highest head row outside are not
  const int head = start < 0 ? (n + start > 0 ? n + start : 0) : (start < n ? start : n);
  int first_outside = -1;
  for (int j = head - 1; j >= 0; --j) {
    if (!(xs[j] >= 0.0f && xs[j] <= 1.0f)) {
      first_outside = j;
      break;
    }
  }
  int cut = end + 1;
  if (cut < 0) cut = n + cut > 0 ? n + cut : 0;
  for (int i = cut; i < n; ++i) xs[i] = -2.0f;
  for (int j = 0; j <= first_outside; ++j) xs[j] = -2.0f;
}

struct SplineScratch {
  double *h, *diag, *upper, *lower, *rhs, *m;
  static SF_HDF SplineScratch carve(Carver& c, int n) {
    SplineScratch s;
    s.h = c.take<double>(n);
    s.diag = c.take<double>(n);
    s.upper = c.take<double>(n);
    s.lower = c.take<double>(n);
    s.rhs = c.take<double>(n);
    s.m = c.take<double>(n);
    return s;
  }
};

// Second derivatives m[0..n-1] of the not-a-knot cubic through (x, y), n >= 4, x strictly increasing.
SF_HDF void not_a_knot_moments(const double* x, const double* y, int n, SplineScratch& s) {
  for (int i = 0; i + 1 < n; ++i) s.h[i] = x[i + 1] - x[i];
  // unknowns m[1..n-2]: row r = i - 1 for the interior equation at i
  const int u = n - 2;
  for (int i = 1; i <= n - 2; ++i) {
    const int r = i - 1;
    const double h0 = s.h[i - 1], h1 = s.h[i];
    s.lower[r] = h0;
    s.diag[r] = 2.0 * (h0 + h1);
    s.upper[r] = h1;
    s.rhs[r] = 6.0 * ((y[i + 1] - y[i]) / h1 - (y[i] - y[i - 1]) / h0);
  }
  // m0 = ((h0 + h1) m1 - h0 m2) / h1 folded into the first row, m_{n-1} likewise into the last
  {
    const double h0 = s.h[0], h1 = s.h[1];
    s.diag[0] += h0 * (h0 + h1) / h1;
    s.upper[0] -= h0 * h0 / h1;
  }
  {
    const double ha = s.h[n - 3], hb = s.h[n - 2];
    s.diag[u - 1] += hb * (ha + hb) / ha;
    s.lower[u - 1] -= hb * hb / ha;
  }
  // Thomas algorithm
  for (int r = 1; r < u; ++r) {
    const double w = s.lower[r] / s.diag[r - 1];
    s.diag[r] -= w * s.upper[r - 1];
    s.rhs[r] -= w * s.rhs[r - 1];
  }
  s.m[u] = s.rhs[u - 1] / s.diag[u - 1];  // m[n - 2] (m is indexed from 0: m[i] for unknown i)
  for (int r = u - 2; r >= 0; --r) s.m[r + 1] = (s.rhs[r] - s.upper[r] * s.m[r + 2]) / s.diag[r];
  s.m[0] = ((s.h[0] + s.h[1]) * s.m[1] - s.h[0] * s.m[2]) / s.h[1];
  s.m[n - 1] = ((s.h[n - 3] + s.h[n - 2]) * s.m[n - 2] - s.h[n - 2] * s.m[n - 3]) / s.h[n - 3];
}

// The interpolant of degree min(3, n - 1) through (x, y) at t (extrapolated from the end pieces).
SF_HDF double spline_at(const double* x, const double* y, int n, const SplineScratch& s, double t) {
  if (n == 2) return y[0] + (y[1] - y[0]) * (t - x[0]) / (x[1] - x[0]);
  if (n == 3) {  // Newton form of the parabola
    const double d01 = (y[1] - y[0]) / (x[1] - x[0]), d12 = (y[2] - y[1]) / (x[2] - x[1]);
    const double d012 = (d12 - d01) / (x[2] - x[0]);
    return y[0] + (t - x[0]) * (d01 + (t - x[1]) * d012);
  }
  int i = 0;  // piece: the last i with x[i] <= t, within [0, n - 2]
  while (i < n - 2 && x[i + 1] <= t) ++i;
  const double h = s.h[i], a = x[i + 1] - t, b = t - x[i];
  return s.m[i] * a * a * a / (6.0 * h) + s.m[i + 1] * b * b * b / (6.0 * h) + (y[i] / h - s.m[i] * h / 6.0) * a +
         (y[i + 1] / h - s.m[i + 1] * h / 6.0) * b;
}

// The published spline points of one lane (lx, ly normalised, ly increasing, n >= 2): the spline read at
// sample_ys (normalised, increasing) within [min(ly) - 0.01, max(ly) + 0.01], kept where 0 <= x < 1,
// scaled to pixels and listed from the bottom up. Returns the number of points written to (px, py).
SF_HDF int spline_points(const double* lx, const double* ly, int n, const double* sample_ys, int n_samples, double width,
                         double height, SplineScratch& s, double* px, double* py) {
  if (n >= 4) not_a_knot_moments(ly, lx, n, s);
  const double lo = ly[0] - 0.01, hi = ly[n - 1] + 0.01;
  int count = 0;
  for (int j = n_samples - 1; j >= 0; --j) {
    const double t = sample_ys[j];
    if (t < lo || t > hi) continue;
    const double x = spline_at(ly, lx, n, s, t);
    if (!(x >= 0.0 && x < 1.0)) continue;
    px[count] = x * width;
    py[count] = t * height;
    ++count;
  }
  return count;
}

// ---- the two families' items ------------------------------------------------------------------------------
struct AnchorPublishedParams {
  float threshold = 0.5f;
  float nms_threshold = 50.0f;
  int top_k = 4;
  int input_width = 640;
  int frame_width = 1640, frame_height = 590;
  float crop_top = 0.0f;
  bool official = false;  // LaneATT: the official layout (its NMS reading, the spline on every frame row)
};

struct AnchorPublishedScratch {
  int *cand, *order, *tmp, *keep;
  unsigned char* removed;
  float *nms, *xs;
  double *lx, *ly;
  SplineScratch spline;
  LaneSpan* spans;
  double *px, *py;
  EmitScratch emit;
  static SF_HDF AnchorPublishedScratch carve(Carver& c, int n, int points, int n_samples, int top_k) {
    AnchorPublishedScratch s;
    s.cand = c.take<int>(n);
    s.order = c.take<int>(n);
    s.tmp = c.take<int>(n);
    s.keep = c.take<int>(n);
    s.removed = c.take<unsigned char>(n);
    s.nms = c.take<float>(static_cast<int64_t>(n) * (5 + points));
    s.xs = c.take<float>(points);
    s.lx = c.take<double>(points);
    s.ly = c.take<double>(points);
    s.spline = SplineScratch::carve(c, points);
    s.spans = c.take<LaneSpan>(top_k);
    const int per_lane = n_samples > points ? n_samples : points;
    s.px = c.take<double>(static_cast<int64_t>(top_k) * per_lane);
    s.py = c.take<double>(static_cast<int64_t>(top_k) * per_lane);
    s.emit = EmitScratch::carve(c, top_k, per_lane);
    return s;
  }
};

SF_HDF size_t anchor_published_workspace(int n, int points, int n_samples, int top_k) {
  return workspace_of<AnchorPublishedScratch>(n, points, n_samples, top_k > 0 ? top_k : 0);
}

// Candidates (score above or at the threshold) in index order, then their NMS order (stable, by score).
SF_HDF int anchor_candidates(const float* score, int n, float threshold, bool at_threshold, AnchorPublishedScratch& s) {
  int m = 0;
  for (int i = 0; i < n; ++i)
    if (at_threshold ? score[i] >= threshold : score[i] > threshold) s.cand[m++] = i;
  for (int j = 0; j < m; ++j) s.order[j] = j;
  const int* cand = s.cand;
  stable_sort(s.order, s.tmp, m, [&](int a, int b) { return score[cand[a]] > score[cand[b]]; });
  return m;
}

// One kept lane's rows (xs normalised in s.xs, bottom first) cut and written: the spline read on sample_ys, or
// the points themselves scaled by (W, H) in float32. ys: the prior rows (normalised, bottom first, float32).
// Returns the points written at (px, py).
// With `crop` (CLRNet), the spline's rows are the prior rows mapped below the crop: (y * (H - crop) + crop) / H.
SF_HDF int anchor_lane_points(AnchorPublishedScratch& s, const float* prior_ys, int points, int start, int end,
                              bool spline, const double* sample_ys, int n_samples, bool crop,
                              const AnchorPublishedParams& p, double* px, double* py) {
  const double H = p.frame_height, top = p.crop_top;
  kept_rows(s.xs, points, start, end);
  int n = 0;
  for (int r = points - 1; r >= 0; --r) {  // reversed: top of the image first, ly increasing
    if (!(s.xs[r] >= 0.0f)) continue;
    s.lx[n] = static_cast<double>(s.xs[r]);
    const double y = static_cast<double>(prior_ys[r]);
    s.ly[n] = crop ? (y * (H - top) + top) / H : y;
    if (!spline) {  // the points themselves, scaled in float32
      px[n] = static_cast<double>(s.xs[r] * static_cast<float>(p.frame_width));
      py[n] = static_cast<double>(prior_ys[r] * static_cast<float>(p.frame_height));
    }
    ++n;
  }
  if (n <= 1) return 0;
  if (!spline) return n;
  return spline_points(s.lx, s.ly, n, sample_ys, n_samples, p.frame_width, p.frame_height, s.spline, px, py);
}

// A kept lane's first row, round(start * (points - 1)) clamped to [lo, hi], and its last row, start + length - 1
// capped at the last row (below -points - 1 every Python slice reads the same). False when the start or the
// length is not a finite number: the lane has no rows.
SF_HDF bool anchor_row_range(float start, float length, int points, int lo, int hi, int* first, int* last) {
  const double start_f = nearbyint(static_cast<double>(start) * (points - 1));
  if (!is_finite(length) || !(start_f == start_f) || start_f - start_f != 0.0) return false;
  *first = start_f < lo ? lo : (start_f > hi ? hi : static_cast<int>(start_f));
  const double span = static_cast<double>(*first) + length - 1.0;
  *last = span > points - 1 ? points - 1 : (span < -points - 1 ? -points - 1 : static_cast<int>(span));
  return true;
}

// CLRNet. prob [P] (softmax class 1, by the caller), lanes [P, 4 + points] (start y, start x, theta, length,
// xs; normalised), prior_ys [points] (torch.linspace(1, 0) in float32), sample_ys [n_samples] (the written
// rows / frame height).
SF_HDF void clrnet_published_item(const float* prob, const float* lanes, int n, int points, const float* prior_ys,
                                  const double* sample_ys, int n_samples, const AnchorPublishedParams& p,
                                  const float* ys, int rows, int max_lanes, float* xs, float* scores,
                                  unsigned char* workspace) {
  Carver c{workspace, 0};
  const int top_k = p.top_k > 0 ? p.top_k : 0;
  AnchorPublishedScratch s = AnchorPublishedScratch::carve(c, n, points, n_samples, top_k);
  const int m = anchor_candidates(prob, n, p.threshold, true, s);
  const int width = 5 + points, stride = 4 + points;
  for (int j = 0; j < m; ++j) {  // [cls0, cls1, start y, start x, length * (points - 1), xs * (w - 1)]
    const float* l = lanes + static_cast<int64_t>(s.cand[j]) * stride;
    float* d = s.nms + static_cast<int64_t>(j) * width;
    d[0] = d[1] = 0.0f;
    d[2] = l[0];
    d[3] = l[1];
    d[4] = l[3] * static_cast<float>(points - 1);
    for (int r = 0; r < points; ++r) d[5 + r] = l[4 + r] * static_cast<float>(p.input_width - 1);
  }
  const int kept = line_nms_ws(s.nms, m, width, s.order, p.nms_threshold, top_k, s.keep, s.removed, 2, 4, 5);
  int n_lanes = 0, used = 0;
  for (int t = 0; t < kept; ++t) {
    const int idx = s.cand[s.keep[t]];
    const float* l = lanes + static_cast<int64_t>(idx) * stride;
    int start, end;
    if (!anchor_row_range(l[0], nearbyintf(l[3] * static_cast<float>(points - 1)), points, 0, points - 1, &start, &end))
      continue;
    for (int r = 0; r < points; ++r) s.xs[r] = l[4 + r];
    const int count = anchor_lane_points(s, prior_ys, points, start, end, true, sample_ys, n_samples, true, p,
                                         s.px + used, s.py + used);
    if (count == 0) continue;
    s.spans[n_lanes++] = {used, count, prob[idx]};
    used += count;
  }
  emit_frame(s.spans, n_lanes, s.px, s.py, p.frame_width, ys, rows, max_lanes, xs, scores, s.emit);
}

// LaneATT. prob [A] (softmax class 1), proposals [A, 2 + points] (start fraction, length in rows, xs in input
// pixels; built by the caller from the anchors), prior_ys [points], sample_ys [n_samples] (the official layout's
// written rows / frame height).
SF_HDF void laneatt_published_item(const float* prob, const float* proposals, int n, int points, const float* prior_ys,
                                   const double* sample_ys, int n_samples, const AnchorPublishedParams& p,
                                   const float* ys, int rows, int max_lanes, float* xs, float* scores,
                                   unsigned char* workspace) {
  Carver c{workspace, 0};
  const int top_k = p.top_k > 0 ? p.top_k : 0;
  AnchorPublishedScratch s = AnchorPublishedScratch::carve(c, n, points, n_samples, top_k);
  const int m = anchor_candidates(prob, n, p.threshold, false, s);
  const int stride = 2 + points;
  // pytorch-auto-drive's layout is the proposals themselves; the official one pads them to its 77 values
  const int width = p.official ? 5 + points : stride;
  for (int j = 0; j < m; ++j) {
    const float* l = proposals + static_cast<int64_t>(s.cand[j]) * stride;
    float* d = s.nms + static_cast<int64_t>(j) * width;
    if (p.official) {
      d[0] = d[1] = d[3] = 0.0f;
      d[2] = l[0];
      d[4] = l[1];
      for (int r = 0; r < points; ++r) d[5 + r] = l[2 + r];
    } else {
      for (int r = 0; r < stride; ++r) d[r] = l[r];
    }
  }
  const int kept = p.official ? line_nms_ws(s.nms, m, width, s.order, p.nms_threshold, top_k, s.keep, s.removed, 2, 4, 5)
                              : line_nms_ws(s.nms, m, width, s.order, p.nms_threshold, top_k, s.keep, s.removed, 0, 1, 2);
  const float w = static_cast<float>(p.input_width);
  int n_lanes = 0, used = 0;
  for (int t = 0; t < kept; ++t) {
    const int idx = s.cand[s.keep[t]];
    const float* l = proposals + static_cast<int64_t>(idx) * stride;
    // (anchors start inside the image; beyond +-4 rows' worth every slice reads the same)
    int start, end;
    if (!anchor_row_range(l[0], nearbyintf(l[1]), points, -4 * points, 4 * points, &start, &end)) continue;
    for (int r = 0; r < points; ++r) s.xs[r] = l[2 + r] / w;
    const int count = anchor_lane_points(s, prior_ys, points, start, end, p.official, sample_ys, n_samples, false, p,
                                         s.px + used, s.py + used);
    if (count == 0) continue;
    s.spans[n_lanes++] = {used, count, prob[idx]};
    used += count;
  }
  emit_frame(s.spans, n_lanes, s.px, s.py, p.frame_width, ys, rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
