// GANet's published post-processing (the official implementation's `group_fast` by centre, CULane
// settings): key points are 1x3 local maxima of the key-point probability above the threshold; start points
// (key points whose vertical offset to their lane's start is below `root_threshold`), listed column by
// column, are grouped when within `cluster_distance` of a group member and each group reduced to its integer
// mean; each key point (row-major) joins the first group whose mean lies within `cluster_distance` of its own
// start estimate; a group of more than one point is a lane of (point + correction) * stride in the writer's
// float32 arithmetic, truncated to integers, written when it has more than `min_points` points. A lane's
// score (ours: the implementation writes none) is numpy's float32 mean of its points' probabilities.
#pragma once

#include "../common.h"

namespace selfocus {
namespace decode {

struct GANetPublishedParams {
  float threshold = 0.4f;
  float root_threshold = 1.0f;
  double cluster_distance = 5.0;
  int min_points = 10;
  int stride = 8;
  float ratio_x = 2.05f, ratio_y = 1.0f, crop_top = 270.0f;  // input pixels -> frame pixels (float32)
  int frame_width = 1640;
};

struct GANetPublishedScratch {
  int *start_x, *start_y;   // start points, column by column
  int *member, *next;       // start-point groups as linked lists (first member, next member)
  long long *sum_x, *sum_y;
  int *count, *last;
  long long *cx, *cy;       // the groups' integer means
  int *kp, *assign;         // key points (row-major cell) and their group
  int *offsets, *fill;      // per group: first slot and fill of its points
  float *conf;              // key-point probabilities, grouped
  LaneSpan* spans;
  double *px, *py;
  EmitScratch emit;
  static SF_HDF GANetPublishedScratch carve(Carver& c, int h, int w) {
    const int n = h * w;
    GANetPublishedScratch s;
    s.start_x = c.take<int>(n);
    s.start_y = c.take<int>(n);
    s.member = c.take<int>(n);
    s.next = c.take<int>(n);
    s.sum_x = c.take<long long>(n);
    s.sum_y = c.take<long long>(n);
    s.count = c.take<int>(n);
    s.last = c.take<int>(n);
    s.cx = c.take<long long>(n);
    s.cy = c.take<long long>(n);
    s.kp = c.take<int>(n);
    s.assign = c.take<int>(n);
    s.offsets = c.take<int>(n + 1);
    s.fill = c.take<int>(n);
    s.conf = c.take<float>(n);
    s.spans = c.take<LaneSpan>(n);
    s.px = c.take<double>(n);
    s.py = c.take<double>(n);
    s.emit = EmitScratch::carve(c, n, n);
    return s;
  }
};

SF_HDF size_t ganet_published_workspace(int h, int w) { return workspace_of<GANetPublishedScratch>(h, w); }

// Whether cell (r, col) of `prob` [h, w] equals the 1x3 max pool there (-inf padding; a NaN in the window
// makes the pool NaN, equal to nothing).
SF_HDF bool ganet_row_peak(const float* prob, int w, int r, int col) {
  const float v = prob[r * w + col];
  if (v != v) return false;
  for (int d = -1; d <= 1; d += 2) {
    const int cc = col + d;
    if (cc < 0 || cc >= w) continue;
    const float u = prob[r * w + cc];
    if (u != u || u > v) return false;
  }
  return true;
}

// Python's int() of a float32 frame coordinate, as a double; a value no int takes (NaN, infinite) is NaN.
SF_HDF double truncated(float v) {
  if (!(v - v == 0.0f)) return static_cast<double>(nan_value());
  return trunc(static_cast<double>(v));
}

// One image. prob [h, w]: the clamped sigmoid of the key-point logits (by the caller, with the reference's
// kernels); offset, error [2, h, w] (x plane, then y plane), in cells.
SF_HDF void ganet_published_item(const float* prob, const float* offset, const float* error, int h, int w,
                                 const GANetPublishedParams& p, const float* ys, int rows, int max_lanes, float* xs,
                                 float* scores, unsigned char* workspace) {
  Carver c{workspace, 0};
  GANetPublishedScratch s = GANetPublishedScratch::carve(c, h, w);
  const int64_t plane = static_cast<int64_t>(h) * w;
  const double d2 = p.cluster_distance;
  // start points column by column, grouped (first group with a member within the distance)
  int n_groups = 0;
  for (int col = 0; col < w; ++col) {
    for (int r = 0; r < h; ++r) {
      const int cell = r * w + col;
      if (!(prob[cell] > p.threshold) || !ganet_row_peak(prob, w, r, col)) continue;
      if (!(offset[plane + cell] < p.root_threshold)) continue;
      int g = 0;
      for (; g < n_groups; ++g) {
        bool near = false;
        for (int m = s.member[g]; m >= 0 && !near; m = s.next[m]) {
          const long long dx = col - s.start_x[m], dy = r - s.start_y[m];
          near = sqrt(static_cast<double>(dx * dx + dy * dy)) <= d2;
        }
        if (near) break;
      }
      const int id = cell;  // start points are indexed by their cell (unique)
      s.start_x[id] = col;
      s.start_y[id] = r;
      s.next[id] = -1;
      if (g == n_groups) {
        s.member[g] = id;
        s.sum_x[g] = 0;
        s.sum_y[g] = 0;
        s.count[g] = 0;
        ++n_groups;
      } else {
        s.next[s.last[g]] = id;
      }
      s.last[g] = id;
      s.sum_x[g] += col;
      s.sum_y[g] += r;
      s.count[g] += 1;
    }
  }
  for (int g = 0; g < n_groups; ++g) {
    s.cx[g] = s.sum_x[g] / s.count[g];  // numpy's integer mean: the sum divided, truncated
    s.cy[g] = s.sum_y[g] / s.count[g];
  }
  // key points row-major, each to the first group whose mean is near its start estimate
  int n_kp = 0;
  for (int g = 0; g <= n_groups; ++g) s.offsets[g] = 0;
  for (int r = 0; r < h; ++r) {
    for (int col = 0; col < w; ++col) {
      const int cell = r * w + col;
      if (!(prob[cell] > p.threshold) || !ganet_row_peak(prob, w, r, col)) continue;
      const double sx = static_cast<double>(static_cast<float>(col) + offset[cell]);
      const double sy = static_cast<double>(static_cast<float>(r) + offset[plane + cell]);
      int g = 0;
      for (; g < n_groups; ++g) {
        const double dx = sx - static_cast<double>(s.cx[g]), dy = sy - static_cast<double>(s.cy[g]);
        if (sqrt(dx * dx + dy * dy) <= d2) break;
      }
      if (g == n_groups) continue;
      s.kp[n_kp] = cell;
      s.assign[n_kp] = g;
      s.offsets[g + 1] += 1;
      ++n_kp;
    }
  }
  for (int g = 0; g < n_groups; ++g) {
    s.offsets[g + 1] += s.offsets[g];
    s.fill[g] = s.offsets[g];
  }
  // each group's points in key-point order, in the writer's arithmetic
  const float stride = static_cast<float>(p.stride);
  for (int i = 0; i < n_kp; ++i) {
    const int cell = s.kp[i], slot = s.fill[s.assign[i]]++;
    const int r = cell / w, col = cell % w;
    const float ax = static_cast<float>(col) + error[cell];
    const float ay = static_cast<float>(r) + error[plane + cell];
    s.px[slot] = truncated(ax * stride * p.ratio_x);
    s.py[slot] = truncated(ay * stride * p.ratio_y + p.crop_top);
    s.conf[slot] = prob[cell];
  }
  int n_spans = 0;
  for (int g = 0; g < n_groups; ++g) {
    const int begin = s.offsets[g], count = s.offsets[g + 1] - begin;
    if (count <= 1 || count <= p.min_points) continue;
    LaneSpan& span = s.spans[n_spans++];
    span.begin = begin;
    span.count = count;
    span.score = numpy_sum(s.conf + begin, count) / static_cast<float>(count);
  }
  emit_frame(s.spans, n_spans, s.px, s.py, p.frame_width, ys, rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
