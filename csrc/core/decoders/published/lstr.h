// pytorch-auto-drive's LSTR post-processing: queries kept by their lane probability (pruned to the lane
// limit), each query's curve read on rows every `gap` frame pixels from the bottom, points inside the image
// and between the curve's lower and upper y. Float32 arithmetic in the reference's order (torch's
// elementwise ops), points in frame pixels.
#pragma once

#include "prune.h"

namespace selfocus {
namespace decode {

struct LSTRPublishedParams {
  float threshold = 0.95f;
  int max_lanes = 4;  // the pruning limit
  int gap = 20, points = 18;
  int frame_width = 1640, frame_height = 590;
};

struct LSTRPublishedScratch {
  unsigned char* keep;
  double* work;
  float* y;  // [points] normalised rows
  LaneSpan* spans;
  double *px, *py;
  EmitScratch emit;
  static SF_HDF LSTRPublishedScratch carve(Carver& c, int queries, int points) {
    LSTRPublishedScratch s;
    s.keep = c.take<unsigned char>(queries);
    s.work = c.take<double>(queries);
    s.y = c.take<float>(points);
    s.spans = c.take<LaneSpan>(queries);
    s.px = c.take<double>(static_cast<int64_t>(queries) * points);
    s.py = c.take<double>(static_cast<int64_t>(queries) * points);
    s.emit = EmitScratch::carve(c, queries, points);
    return s;
  }
};

SF_HDF size_t lstr_published_workspace(int queries, int points) {
  return workspace_of<LSTRPublishedScratch>(queries, points);
}

// prob [Q] lane probabilities (softmax of the class logits, by the caller), curves [Q, 8]: lower y, upper y,
// then k'', f'', m'', n'', b'', b''' of x(y) = k''/(y - f'')^2 + m''/(y - f'') + n'' + b'' y - b'''.
SF_HDF void lstr_published_item(const float* prob, const float* curves, int queries, const LSTRPublishedParams& p,
                                const float* ys, int rows, int max_lanes, float* xs, float* scores,
                                unsigned char* workspace) {
  Carver c{workspace, 0};
  LSTRPublishedScratch s = LSTRPublishedScratch::carve(c, queries, p.points);
  for (int q = 0; q < queries; ++q) s.keep[q] = prob[q] > p.threshold;
  prune_lanes(prob, s.keep, s.work, queries, p.max_lanes);
  for (int i = 0; i < p.points; ++i)
    s.y[i] = static_cast<float>(1.0 - static_cast<double>(i * p.gap) / static_cast<double>(p.frame_height));
  const float W = static_cast<float>(p.frame_width);
  int n_lanes = 0, used = 0;
  for (int q = 0; q < queries; ++q) {
    if (!s.keep[q]) continue;
    const float* cv = curves + static_cast<int64_t>(q) * 8;
    int count = 0;
    for (int i = 0; i < p.points; ++i) {
      const float y = s.y[i];
      const float d = y - cv[3];
      const float x = cv[2] / (d * d) + cv[4] / d + cv[5] + cv[6] * y - cv[7];
      if (!(x >= 0.0f && x <= 1.0f && y < cv[1] && y > cv[0])) continue;
      s.px[used + count] = static_cast<double>(x * W);
      s.py[used + count] = static_cast<double>(p.frame_height - i * p.gap);
      ++count;
    }
    if (count < 2) continue;
    s.spans[n_lanes++] = {used, count, prob[q]};
    used += count;
  }
  emit_frame(s.spans, n_lanes, s.px, s.py, p.frame_width, ys, rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
