// The Lane Distortion Score of one image (docs/lanes.md has the definition), written once for the CPU
// loop and the CUDA kernel. Lanes are rows of x values on shared y rows, NaN where a lane has no point.
#pragma once

#include <cstdint>

#include "assignment.h"
#include "quant_math.h"  // SF_HD

namespace selfocus {
namespace lanes {

constexpr int kMaxScoreLanes = 16;

struct DistortionParams {
  float width;    // band width (px) of the lane IoU used for matching
  float penalty;  // cost of a point without a partner
  float min_iou;  // pairs below this IoU are not matched
};

SF_HD bool has_point(float x) { return x == x; }  // not NaN

// Points of a lane and the diagonal of their bounding box (the "bounding length"; at least 1 px so that
// a one-point lane has a finite score).
SF_HD int lane_extent(const float* xs, const float* ys, int rows, float* bound) {
  int n = 0;
  float x0 = 0.0f, x1 = 0.0f, y0 = 0.0f, y1 = 0.0f;
  for (int r = 0; r < rows; ++r) {
    const float x = xs[r];
    if (!has_point(x)) continue;
    const float y = ys[r];
    if (n == 0) {
      x0 = x1 = x;
      y0 = y1 = y;
    } else {
      x0 = x < x0 ? x : x0;
      x1 = x > x1 ? x : x1;
      y0 = y < y0 ? y : y0;
      y1 = y > y1 ? y : y1;
    }
    ++n;
  }
  const float b = sqrtf((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0));
  *bound = b > 1.0f ? b : 1.0f;
  return n;
}

// IoU of two lanes drawn as horizontal bands of `width` px on their rows: summed row overlaps over the
// union of the two bands' areas.
SF_HD float band_iou(const float* a, int na, const float* b, int nb, int rows, float width) {
  if (na == 0 || nb == 0) return 0.0f;
  float overlap = 0.0f;
  for (int r = 0; r < rows; ++r) {
    if (has_point(a[r]) && has_point(b[r])) {
      const float o = width - fabsf(a[r] - b[r]);
      overlap += o > 0.0f ? o : 0.0f;
    }
  }
  const float uni = width * static_cast<float>(na + nb) - overlap;
  return uni > 0.0f ? overlap / uni : 0.0f;
}

// Score of perturbed lanes `pert` [lb, rows] against reference lanes `ref` [la, rows]; lanes without
// points are ignored. la, lb <= kMaxScoreLanes.
SF_HD float distortion_score_image(const float* ref, int la, const float* pert, int lb, const float* ys, int rows,
                                   DistortionParams p) {
  int na[kMaxScoreLanes] = {}, nb[kMaxScoreLanes] = {};
  float bound[kMaxScoreLanes] = {}, unused = 0.0f;
  int ia[kMaxScoreLanes], ib[kMaxScoreLanes];  // indices of lanes that have points
  int ca = 0, cb = 0;
  for (int i = 0; i < la; ++i) {
    const int n = lane_extent(ref + i * rows, ys, rows, &bound[ca]);
    if (n > 0) {
      na[ca] = n;
      ia[ca++] = i;
    }
  }
  for (int j = 0; j < lb; ++j) {
    const int n = lane_extent(pert + j * rows, ys, rows, &unused);
    if (n > 0) {
      nb[cb] = n;
      ib[cb++] = j;
    }
  }
  float iou[kMaxScoreLanes * kMaxScoreLanes];
  for (int i = 0; i < ca; ++i) {
    for (int j = 0; j < cb; ++j) {
      const float v = band_iou(ref + ia[i] * rows, na[i], pert + ib[j] * rows, nb[j], rows, p.width);
      iou[i * cb + j] = v >= p.min_iou ? v : 0.0f;
    }
  }
  int match[kMaxScoreLanes];
  max_weight_matching<kMaxScoreLanes>(iou, ca, cb, match);

  float score = 0.0f;
  bool pert_matched[kMaxScoreLanes];
  for (int j = 0; j < cb; ++j) pert_matched[j] = false;
  for (int i = 0; i < ca; ++i) {
    const int j = match[i];
    if (j < 0 || iou[i * cb + j] <= 0.0f) {
      score += p.penalty * static_cast<float>(na[i]);
      continue;
    }
    pert_matched[j] = true;
    const float* a = ref + ia[i] * rows;
    const float* b = pert + ib[j] * rows;
    float dist = 0.0f;
    int mismatched = 0;
    for (int r = 0; r < rows; ++r) {
      const bool ha = has_point(a[r]);
      const bool hb = has_point(b[r]);
      if (ha && hb) {
        dist += fabsf(a[r] - b[r]);
      } else if (ha != hb) {
        ++mismatched;
      }
    }
    score += dist / bound[i] + p.penalty * static_cast<float>(mismatched);
  }
  for (int j = 0; j < cb; ++j) {
    if (!pert_matched[j]) score += p.penalty * static_cast<float>(nb[j]);
  }
  return score;
}

}  // namespace lanes
}  // namespace selfocus
