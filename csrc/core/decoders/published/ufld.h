// Ultra-Fast Lane Detection (row anchors): per row and lane, the expected grid cell of the softmax over cells
// unless the "absent" class wins; a lane is kept with more than two present rows. The shared parts are in
// common.h.
//
// The caller passes the softmax `prob` (numpy's float32 arithmetic in the reference) beside the logits; the
// expectation, the absent test and the point positions are computed here in the reference's float64
// arithmetic and order (sequential sums over cells, numpy's logaddexp reduction), so the points are the same
// integers. Rows arrive bottom row first (the reference's reversed order).
#pragma once

#include "../common.h"

namespace selfocus {
namespace decode {

struct UFLDParams {
  int input_width = 800;    // model input width (the cell pitch is (input_width - 1) / (cells - 1))
  int frame_height = 590;   // rows are frame_height - 1 - j * row_gap for present row j
  int row_gap = 20;
};

struct UFLDScratch {
  double* expected;  // [rows]
  LaneSpan* spans;   // [lanes]
  float *px, *py;    // [lanes * rows]
  EmitScratch emit;
  static SF_HDF UFLDScratch carve(Carver& c, int rows, int lanes) {
    UFLDScratch s;
    s.expected = c.take<double>(rows);
    s.spans = c.take<LaneSpan>(lanes);
    s.px = c.take<float>(static_cast<int64_t>(lanes) * rows);
    s.py = c.take<float>(static_cast<int64_t>(lanes) * rows);
    s.emit = EmitScratch::carve(c, lanes, rows);
    return s;
  }
};

SF_HDF size_t ufld_workspace(int rows, int lanes) { return workspace_of<UFLDScratch>(rows, lanes); }

// numpy's logaddexp (npy_logaddexp) in double.
SF_HDF double np_logaddexp(double x, double y) {
  if (x == y) return x + 0.693147180559945309417232121458176568;  // equal infinities stay infinite
  const double d = x - y;
  if (d > 0) return x + log1p(exp(-d));
  if (d <= 0) return y + log1p(exp(d));
  return d;  // NaN
}

// One image. prob and loc: [cells, rows, lanes] (prob = softmax of loc over cells, float32); exist:
// [rows, lanes] (logsumexp of the cells minus the absent logit). Lane scores: the mean over the lane's
// present rows of sigmoid(exist) in double, in row order (a NaN value counted as 0), rounded to float32.
SF_HDF void ufld_item(const float* prob, const float* loc, const float* exist, int cells, int rows, int lanes,
                      const UFLDParams& p, const InputMap& frame, const float* ys, int out_rows, int max_lanes,
                      float* xs, float* scores, unsigned char* workspace) {
  Carver c{workspace, 0};
  UFLDScratch s = UFLDScratch::carve(c, rows, lanes);
  const int64_t plane = static_cast<int64_t>(rows) * lanes;
  const double cell = static_cast<double>(p.input_width - 1) / static_cast<double>(cells - 1);
  int n_spans = 0, n_pts = 0;
  for (int i = 0; i < lanes; ++i) {
    int nonzero = 0;
    for (int j = 0; j < rows; ++j) {
      const int64_t at = static_cast<int64_t>(j) * lanes + i;
      double e = 0.0;
      float top = loc[at];
      double lse = static_cast<double>(loc[at]);
      bool nan_top = top != top;
      for (int g = 0; g < cells; ++g) {
        e += static_cast<double>(prob[g * plane + at]) * static_cast<double>(g + 1);
        const float v = loc[g * plane + at];
        if (g > 0) lse = np_logaddexp(lse, static_cast<double>(v));
        nan_top = nan_top || v != v;
        top = v > top ? v : top;
      }
      if (nan_top) top = nan_value();  // numpy's max propagates NaN
      if (lse - static_cast<double>(exist[at]) > static_cast<double>(top)) e = 0.0;
      s.expected[j] = e;
      nonzero += e != 0.0;  // NaN counts, as numpy's count_nonzero(col != 0)
    }
    if (nonzero <= 2) continue;
    LaneSpan& span = s.spans[n_spans];
    span.begin = n_pts;
    double total = 0.0;
    for (int j = 0; j < rows; ++j) {
      const double e = s.expected[j];
      if (!(e > 0.0)) continue;
      // int(col * cell * W / w) - 1, evaluated left to right; a value no int holds (only from a prob that is
      // not a softmax) is not a point
      const double at_frame = e * cell * static_cast<double>(frame.frame_width) / static_cast<double>(p.input_width);
      s.px[n_pts] = at_frame < 1073741824.0 ? static_cast<float>(static_cast<long long>(at_frame) - 1) : nan_value();
      s.py[n_pts] = static_cast<float>(p.frame_height - j * p.row_gap - 1);
      const double x = static_cast<double>(exist[static_cast<int64_t>(j) * lanes + i]);
      const double sg = 1.0 / (1.0 + exp(-x));
      total += sg == sg ? sg : 0.0;  // a NaN existence value adds nothing: a written lane has a score
      ++n_pts;
    }
    span.count = n_pts - span.begin;
    span.score = span.count ? static_cast<float>(total / span.count) : 0.0f;  // (no points: not emitted)
    ++n_spans;
  }
  emit(s.spans, n_spans, s.px, s.py, frame, ys, out_rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
