// The GANet: keypoint heat map, start-point and offset regression, grouped into lanes; the shared parts are in common.h.
#pragma once

#include "common.h"

namespace selfocus {
namespace decode {

struct GANetParams {
  float threshold = 0.4f;
  float seed_dist = 1.0f;
  float cluster_dist = 5.0f;
  float assign_dist = 4.0f;
  int stride = 8;
};

// ---- GANet ---------------------------------------------------------------------------------------------
struct GANetScratch {
  int *kp, *order, *tmp, *cluster, *members;
  float* conf;
  double *pos_x, *pos_y, *start_x, *start_y, *cx, *cy;
  unsigned char* seed;
  LaneSpan* spans;
  float *px, *py;
  EmitScratch emit;
  static SF_HDF GANetScratch carve(Carver& c, int h, int w) {
    const int n = h * w;
    GANetScratch s;
    s.kp = c.take<int>(n);
    s.order = c.take<int>(n);
    s.tmp = c.take<int>(n);
    s.cluster = c.take<int>(n);
    s.members = c.take<int>(n);
    s.conf = c.take<float>(n);
    s.pos_x = c.take<double>(n);
    s.pos_y = c.take<double>(n);
    s.start_x = c.take<double>(n);
    s.start_y = c.take<double>(n);
    s.cx = c.take<double>(n);
    s.cy = c.take<double>(n);
    s.seed = c.take<unsigned char>(n);
    s.spans = c.take<LaneSpan>(n);
    s.px = c.take<float>(n);
    s.py = c.take<float>(n);
    s.emit = EmitScratch::carve(c, n, n);
    return s;
  }
};

SF_HDF size_t ganet_workspace(int h, int w) { return workspace_of<GANetScratch>(h, w); }

// Candidate keypoints kept per image, the strongest first: clustering is quadratic in them, and a saturated
// heatmap would otherwise make every cell a candidate.
constexpr int kGANetMaxKeypoints = 4096;

// prob [h, w] keypoint probabilities, pts / intr [2, h, w] (x plane then y plane), in cells.
SF_HDF void ganet_item(const float* prob, const float* pts, const float* intr, int h, int w, const GANetParams& p,
                      const InputMap& map, const float* ys, int rows, int max_lanes, float* xs, float* scores,
                      unsigned char* workspace) {
  Carver c{workspace, 0};
  GANetScratch s = GANetScratch::carve(c, h, w);
  const int64_t plane = static_cast<int64_t>(h) * w;
  int n = 0;
  for (int r = 0; r < h; ++r) {
    for (int col = 0; col < w; ++col) {
      const float v = prob[r * w + col];
      const float left = col > 0 ? prob[r * w + col - 1] : -INFINITY;
      const float right = col + 1 < w ? prob[r * w + col + 1] : -INFINITY;
      if (v >= left && v >= right && v > p.threshold) {
        s.kp[n] = r * w + col;
        s.conf[n] = v;
        ++n;
      }
    }
  }
  if (n > kGANetMaxKeypoints) {
    // Keep the strongest candidates (ties: row-major order), still in row-major order.
    for (int i = 0; i < n; ++i) s.order[i] = i;
    const float* cf = s.conf;
    stable_sort(s.order, s.tmp, n, [&](int a, int b) { return cf[a] > cf[b]; });
    for (int i = 0; i < n; ++i) s.cluster[i] = 0;
    for (int t = 0; t < kGANetMaxKeypoints; ++t) s.cluster[s.order[t]] = 1;
    int m = 0;
    for (int i = 0; i < n; ++i) {
      if (!s.cluster[i]) continue;
      s.kp[m] = s.kp[i];
      s.conf[m] = s.conf[i];
      ++m;
    }
    n = m;
  }
  int n_lanes = 0;
  if (n > 0) {
    for (int i = 0; i < n; ++i) {
      const int o = s.kp[i];
      const double cxd = (o % w) + 0.5, cyd = (o / w) + 0.5;
      s.pos_x[i] = cxd + intr[o];
      s.pos_y[i] = cyd + intr[plane + o];
      s.start_x[i] = cxd + pts[o];
      s.start_y[i] = cyd + pts[plane + o];
      s.seed[i] = hypotf(pts[o], pts[plane + o]) < p.seed_dist;  // float, as std::hypot(float, float)
      s.order[i] = i;
    }
    const float* conf = s.conf;
    stable_sort(s.order, s.tmp, n, [&](int a, int b) { return conf[a] > conf[b]; });
    int centres = 0;
    for (int t = 0; t < n; ++t) {
      const int i = s.order[t];
      if (!s.seed[i]) continue;
      bool far = true;
      for (int q = 0; q < centres; ++q) far = far && hypot(s.pos_x[i] - s.cx[q], s.pos_y[i] - s.cy[q]) > p.cluster_dist;
      if (far) {
        s.cx[centres] = s.pos_x[i];
        s.cy[centres] = s.pos_y[i];
        ++centres;
      }
    }
    for (int i = 0; i < n; ++i) {
      int best = 0;
      double best_d = INFINITY;
      for (int q = 0; q < centres; ++q) {
        const double d = hypot(s.start_x[i] - s.cx[q], s.start_y[i] - s.cy[q]);
        if (d < best_d) {
          best_d = d;
          best = q;
        }
      }
      s.cluster[i] = centres > 0 && best_d <= p.assign_dist ? best : -1;
    }
    int used = 0;
    for (int q = 0; q < centres; ++q) {
      int m = 0;
      for (int i = 0; i < n; ++i)
        if (s.cluster[i] == q) s.members[m++] = i;
      if (m < 2) continue;
      // score: mean confidence in keypoint (row-major) order, the reference's np.mean
      float* cbuf = s.px + used;  // the lane's points are written over it only afterwards
      for (int t = 0; t < m; ++t) cbuf[t] = s.conf[s.members[t]];
      const float score = numpy_sum(cbuf, m) / static_cast<float>(m);
      const double* pos_y = s.pos_y;
      stable_sort(s.members, s.order, m, [&](int a, int b) { return pos_y[a] > pos_y[b]; });
      for (int t = 0; t < m; ++t) {
        const int i = s.members[t];
        s.px[used + t] = static_cast<float>(s.pos_x[i]) * static_cast<float>(p.stride) - 0.5f;
        s.py[used + t] = static_cast<float>(s.pos_y[i]) * static_cast<float>(p.stride) - 0.5f;
      }
      s.spans[n_lanes++] = {used, m, score};
      used += m;
    }
  }
  emit(s.spans, n_lanes, s.px, s.py, map, ys, rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
