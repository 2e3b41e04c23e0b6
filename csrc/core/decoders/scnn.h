// The SCNN and RESA: segmentation maps read row by row, lanes kept by their existence; the shared parts are in common.h.
#pragma once

#include "common.h"

namespace selfocus {
namespace decode {

struct SCNNParams {
  float exist_threshold = 0.5f;
  float point_threshold = 0.3f;
  int blur = 9;
  int width = 400, height = 160;  // input size
};

// ---- SCNN ----------------------------------------------------------------------------------------------
SF_HDF int reflect101(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

// Source index and weights of PyTorch's bilinear interpolate(align_corners=False).
SF_HDF void bilinear_tap(int in, int out, int d, int* i0, int* i1, float* w0, float* w1) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  float src = scale * (static_cast<float>(d) + 0.5f) - 0.5f;
  if (src < 0.0f) src = 0.0f;
  *i0 = static_cast<int>(src);
  *i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
  const float l1 = src - static_cast<float>(*i0);
  *w0 = 1.0f - l1;
  *w1 = l1;
}

constexpr float kTieTolerance = 1e-5f;  // the arg-max plateau rule of the reference decoder

struct Tap {
  int i0, i1;
  float w0, w1;
};

// Rows of horizontal box sums computed together: each row's running sum is one serial chain of double
// additions (its order fixed by OpenCV's), so several rows side by side keep the adders busy.
constexpr int kSCNNRowGroup = 8;

struct SCNNScratch {
  float *hrows, *up, *padded, *blurred;
  Tap *tx, *ty;     // bilinear taps along x (input width) and y (input height), computed once per image
  double* boxes;    // horizontal box sums of every padded row that the sample rows need: [rows, width]
  double* colsum;   // the running vertical sum: [width]
  unsigned char* have;
  float* sample_x;  // per sample row: the chosen column, or -1 where the row's maximum is below threshold
  LaneSpan* spans;
  float *px, *py;
  EmitScratch emit;
  static SF_HDF int box_rows(const SCNNParams& p) { return p.height + p.blur - 1 + kSCNNRowGroup; }
  static SF_HDF SCNNScratch carve(Carver& c, int channels, int h, int n_rows, const SCNNParams& p) {
    SCNNScratch s;
    s.hrows = c.take<float>(static_cast<int64_t>(h) * p.width);
    s.up = c.take<float>(static_cast<int64_t>(p.height) * p.width);
    s.padded = c.take<float>(static_cast<int64_t>(kSCNNRowGroup) * (p.width + p.blur - 1));
    s.blurred = c.take<float>(p.width);
    s.tx = c.take<Tap>(p.width);
    s.ty = c.take<Tap>(p.height);
    s.boxes = c.take<double>(static_cast<int64_t>(box_rows(p)) * p.width);
    s.colsum = c.take<double>(p.width);
    s.have = c.take<unsigned char>(p.height);
    s.sample_x = c.take<float>(n_rows);
    s.spans = c.take<LaneSpan>(channels);
    s.px = c.take<float>(static_cast<int64_t>(channels) * n_rows);
    s.py = c.take<float>(static_cast<int64_t>(channels) * n_rows);
    s.emit = EmitScratch::carve(c, channels, n_rows);
    return s;
  }
};

SF_HDF size_t scnn_workspace(int channels, int h, int n_rows, const SCNNParams& p) {
  return workspace_of<SCNNScratch>(channels, h, n_rows, p);
}

// One row of the upsampled lane map (bilinear, horizontal taps first, as the reference), computed once.
SF_HDF const float* scnn_up_row(SCNNScratch& s, const SCNNParams& p, int r) {
  float* ur = s.up + static_cast<int64_t>(r) * p.width;
  if (!s.have[r]) {
    const Tap a = s.ty[r];
    const float* top = s.hrows + static_cast<int64_t>(a.i0) * p.width;
    const float* bot = s.hrows + static_cast<int64_t>(a.i1) * p.width;
    for (int x = 0; x < p.width; ++x) ur[x] = a.w0 * top[x] + a.w1 * bot[x];
    s.have[r] = 1;
  }
  return ur;
}

// Horizontal box sums of padded rows j0 .. j0 + kSCNNRowGroup - 1 (reflect-101 rows and columns) into
// `out` (row-major), in double, in OpenCV's running-sum order: the first window added left to right, then
// each step adds (entering - leaving).
SF_HDF void scnn_row_boxes(SCNNScratch& s, const SCNNParams& p, int j0, double* out) {
  constexpr int G = kSCNNRowGroup;
  const int half = p.blur / 2, W = p.width, pw = p.width + p.blur - 1;
  for (int g = 0; g < G; ++g) {
    const float* src = scnn_up_row(s, p, reflect101(j0 + g, p.height));
    float* pad = s.padded + static_cast<int64_t>(g) * pw;
    for (int i = 0; i < half; ++i) pad[i] = src[reflect101(i - half, W)];
    for (int x = 0; x < W; ++x) pad[half + x] = src[x];
    for (int i = half + W; i < pw; ++i) pad[i] = src[reflect101(i - half, W)];
  }
  double run[G];
  for (int g = 0; g < G; ++g) {
    const float* pad = s.padded + static_cast<int64_t>(g) * pw;
    run[g] = 0.0;
    for (int i = 0; i < p.blur; ++i) run[g] += static_cast<double>(pad[i]);
    out[static_cast<int64_t>(g) * W] = run[g];
  }
  for (int x = 1; x < W; ++x) {
    for (int g = 0; g < G; ++g) {
      const float* pad = s.padded + static_cast<int64_t>(g) * pw;
      run[g] += static_cast<double>(pad[x + p.blur - 1]) - static_cast<double>(pad[x - 1]);
      out[static_cast<int64_t>(g) * W + x] = run[g];
    }
  }
}

// The leftmost column within kTieTolerance of the row's maximum `best_v` (plateaus of equal probability
// would otherwise be decided by rounding).
SF_HDF int scnn_leftmost_near(const float* row, float best_v) {
  int best = 0;
  while (row[best] < best_v - kTieTolerance) ++best;
  return best;
}

// One lane channel's chosen columns (sample_x, -1 where none) -> a lane of at least two points, scored by
// its existence probability `e`.
SF_HDF void scnn_add_lane(SCNNScratch& s, const int* sample_rows, int n_rows, float e, int* n_lanes, int* used) {
  int count = 0;
  for (int i = 0; i < n_rows; ++i) {
    if (s.sample_x[i] < 0.0f) continue;
    s.px[*used + count] = s.sample_x[i];
    s.py[*used + count] = static_cast<float>(sample_rows[i]);
    ++count;
  }
  if (count >= 2) {
    s.spans[(*n_lanes)++] = {*used, count, e};
    *used += count;
  }
}

// prob [C, h, w] per-channel probabilities at the feature resolution (background + lanes), exist [C - 1]
// probabilities, sample_rows [n_rows]: input rows to read. Each lane map is upsampled (bilinear) and
// blurred with OpenCV's normalised box filter (reflect-101 borders) computed the way OpenCV computes it for
// float32 images -- horizontal running sums per row in double, then one vertical running sum carried down
// from the top of the image -- so the blurred values are OpenCV's to the bit and the arg-max columns agree
// with the reference even on plateaus. Rows below the lowest sample row are never computed.
SF_HDF void scnn_item(const float* prob, const float* exist, int channels, int h, int w, const int* sample_rows,
                      int n_rows, const SCNNParams& p, const InputMap& map, const float* ys, int rows, int max_lanes,
                      float* xs, float* scores, unsigned char* workspace) {
  Carver c{workspace, 0};
  SCNNScratch s = SCNNScratch::carve(c, channels, h, n_rows, p);
  const int64_t plane = static_cast<int64_t>(h) * w;
  const int half = p.blur / 2, k = p.blur, W = p.width;
  for (int x = 0; x < W; ++x) bilinear_tap(w, W, x, &s.tx[x].i0, &s.tx[x].i1, &s.tx[x].w0, &s.tx[x].w1);
  for (int y = 0; y < p.height; ++y) bilinear_tap(h, p.height, y, &s.ty[y].i0, &s.ty[y].i1, &s.ty[y].w0, &s.ty[y].w1);
  int last_row = -1;
  for (int i = 0; i < n_rows; ++i) last_row = sample_rows[i] > last_row ? sample_rows[i] : last_row;
  const double norm = 1.0 / (static_cast<double>(k) * k);
  int n_lanes = 0, used = 0;
  for (int lane_c = 1; lane_c < channels; ++lane_c) {
    const float e = exist[lane_c - 1];
    if (!(e > p.exist_threshold)) continue;
    const float* pc = prob + static_cast<int64_t>(lane_c) * plane;
    for (int sr = 0; sr < h; ++sr) {
      float* dst = s.hrows + static_cast<int64_t>(sr) * W;
      const float* src = pc + static_cast<int64_t>(sr) * w;
      for (int x = 0; x < W; ++x) dst[x] = s.tx[x].w0 * src[s.tx[x].i0] + s.tx[x].w1 * src[s.tx[x].i1];
    }
    for (int r = 0; r < p.height; ++r) s.have[r] = 0;
    for (int i = 0; i < n_rows; ++i) s.sample_x[i] = -1.0f;
    // boxes row t holds padded row t - half; the vertical sum starts with the first k - 1 of them
    const int needed = last_row + k;  // padded rows -half .. last_row + half
    for (int t = 0; t < needed; t += kSCNNRowGroup) scnn_row_boxes(s, p, t - half, s.boxes + static_cast<int64_t>(t) * W);
    for (int x = 0; x < W; ++x) s.colsum[x] = 0.0;
    for (int t = 0; t < k - 1; ++t)
      for (int x = 0; x < W; ++x) s.colsum[x] += s.boxes[static_cast<int64_t>(t) * W + x];
    for (int y = 0; y <= last_row; ++y) {
      const double* entering = s.boxes + static_cast<int64_t>(y + k - 1) * W;
      const double* leaving = s.boxes + static_cast<int64_t>(y) * W;
      bool sampled = false;
      for (int i = 0; i < n_rows; ++i) sampled = sampled || sample_rows[i] == y;
      if (!sampled) {
        for (int x = 0; x < W; ++x) s.colsum[x] = (s.colsum[x] + entering[x]) - leaving[x];
        continue;
      }
      float best_v = -INFINITY;
      for (int x = 0; x < W; ++x) {
        const double sum = s.colsum[x] + entering[x];
        s.blurred[x] = static_cast<float>(sum * norm);
        s.colsum[x] = sum - leaving[x];
        best_v = s.blurred[x] > best_v ? s.blurred[x] : best_v;
      }
      if (!(best_v > p.point_threshold)) continue;
      const int best = scnn_leftmost_near(s.blurred, best_v);
      for (int i = 0; i < n_rows; ++i)
        if (sample_rows[i] == y) s.sample_x[i] = static_cast<float>(best);
    }
    scnn_add_lane(s, sample_rows, n_rows, e, &n_lanes, &used);
  }
  emit(s.spans, n_lanes, s.px, s.py, map, ys, rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
