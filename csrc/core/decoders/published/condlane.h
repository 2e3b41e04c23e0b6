// CondLaneNet's published post-processing (the official implementation, CULane test settings), the parts
// around its dynamic convolutions. Proposals are 3x3 local maxima of the clamped proposal probability above
// the threshold, row-major; a proposal joins the first group holding a member within `group_distance` cells,
// else starts one, and the LAST member of each group is kept (the implementation's "highest score" choice
// never updates the score it compares with). The caller runs every proposal's two dynamic convolutions (the
// location logits and the sub-column offset) with the implementation's kernels and passes, per kept
// proposal, the softmax-expected column of each row; here each kept proposal's rows run from one above its
// first to one below its last covered row (the row-range logits' arg-max, torch's: a NaN wins, ties go to
// the first class), the column of a row is the expectation truncated, x = (column + offset) * stride and
// y = row * stride in the writer's float32 arithmetic, scaled to the frame; a lane needs two rows. A row
// whose expectation is not a column (NaN logits: the implementation indexes outside the map there) has no
// point.
#pragma once

#include "../common.h"

namespace selfocus {
namespace decode {

struct CondLanePublishedParams {
  float threshold = 0.5f;
  double group_distance = 4.0;
  float stride = 8.0f;  // input pixels per stride-8 cell (input width / map width, float32)
  float ratio_x = 2.05f, ratio_y = 1.0f, crop_top = 270.0f;  // input pixels -> frame pixels (float32)
  int frame_width = 1640;
};

// ---- proposals -------------------------------------------------------------------------------------------
struct CondLaneSeedScratch {
  int *next, *first, *last;
  static SF_HDF CondLaneSeedScratch carve(Carver& c, int cells) {
    CondLaneSeedScratch s;
    s.next = c.take<int>(cells);
    s.first = c.take<int>(cells);
    s.last = c.take<int>(cells);
    return s;
  }
};

SF_HDF size_t condlane_seed_workspace(int h, int w) { return workspace_of<CondLaneSeedScratch>(h * w); }

// Whether cell (r, col) of `prob` [h, w] equals the 3x3 max pool there (-inf padding; a NaN in the window
// makes the pool NaN, equal to nothing).
SF_HDF bool condlane_peak(const float* prob, int h, int w, int r, int col) {
  const float v = prob[r * w + col];
  if (v != v) return false;
  for (int dr = -1; dr <= 1; ++dr) {
    for (int dc = -1; dc <= 1; ++dc) {
      const int rr = r + dr, cc = col + dc;
      if (rr < 0 || rr >= h || cc < 0 || cc >= w) continue;
      const float u = prob[rr * w + cc];
      if (u != u || u > v) return false;
    }
  }
  return true;
}

// prob [h, w]: the clamped sigmoid of the proposal logits (by the caller, with the reference's kernels).
// Writes the proposals' cells, row-major (`seeds`, their count returned), and the indices into them of the
// kept ones (`kept`, `*n_kept`).
SF_HDF int condlane_published_seeds(const float* prob, int h, int w, const CondLanePublishedParams& p, int* seeds,
                                    int* kept, int* n_kept, unsigned char* workspace) {
  Carver c{workspace, 0};
  CondLaneSeedScratch s = CondLaneSeedScratch::carve(c, h * w);
  int n = 0, n_groups = 0;
  for (int r = 0; r < h; ++r) {
    for (int col = 0; col < w; ++col) {
      if (!(prob[r * w + col] > p.threshold) || !condlane_peak(prob, h, w, r, col)) continue;
      int g = 0;
      for (; g < n_groups; ++g) {
        bool near = false;
        for (int m = s.first[g]; m >= 0 && !near; m = s.next[m]) {
          const long long dx = col - seeds[m] % w, dy = r - seeds[m] / w;
          near = sqrt(static_cast<double>(dx * dx + dy * dy)) <= p.group_distance;
        }
        if (near) break;
      }
      seeds[n] = r * w + col;
      s.next[n] = -1;
      if (g == n_groups) {
        s.first[g] = n;
        ++n_groups;
      } else {
        s.next[s.last[g]] = n;
      }
      s.last[g] = n;
      ++n;
    }
  }
  for (int g = 0; g < n_groups; ++g) kept[g] = s.last[g];
  *n_kept = n_groups;
  return n;
}

// ---- lanes of the kept proposals ---------------------------------------------------------------------------
struct CondLaneLaneScratch {
  LaneSpan* spans;
  double *px, *py;
  EmitScratch emit;
  static SF_HDF CondLaneLaneScratch carve(Carver& c, int lanes, int h8) {
    CondLaneLaneScratch s;
    s.spans = c.take<LaneSpan>(lanes);
    s.px = c.take<double>(static_cast<int64_t>(lanes) * h8);
    s.py = c.take<double>(static_cast<int64_t>(lanes) * h8);
    s.emit = EmitScratch::carve(c, lanes, h8);
    return s;
  }
};

SF_HDF size_t condlane_lane_workspace(int lanes, int h8) { return workspace_of<CondLaneLaneScratch>(lanes, h8); }

// Whether the row-range logits (absent, present) of one row pick "present", as torch's arg-max does.
SF_HDF bool condlane_row_present(const float* logits) {
  const float a = logits[0], b = logits[1];
  if (a != a) return false;
  if (b != b) return true;
  return b > a;
}

// n kept proposals: `cells` their proposal cells and `probs` their probabilities; columns [n, h8] the
// softmax-expected columns, offsets [n, h8, w8] the offset maps, range [cells of the proposal map, h8, 2]
// the row-range logits of the image.
SF_HDF void condlane_published_lanes(const float* columns, const float* offsets, const float* range, const int* cells,
                                     const float* probs, int n, int h8, int w8, const CondLanePublishedParams& p,
                                     const float* ys, int rows, int max_lanes, float* xs, float* scores,
                                     unsigned char* workspace) {
  Carver c{workspace, 0};
  CondLaneLaneScratch s = CondLaneLaneScratch::carve(c, n, h8);
  int n_spans = 0, n_pts = 0;
  for (int i = 0; i < n; ++i) {
    const float* rng = range + static_cast<int64_t>(cells[i]) * h8 * 2;
    int first = -1, last = -1;
    for (int r = 0; r < h8; ++r) {
      if (!condlane_row_present(rng + 2 * r)) continue;
      if (first < 0) first = r;
      last = r;
    }
    if (first < 0) continue;
    first = first > 0 ? first - 1 : 0;
    last = last + 1 < h8 ? last + 1 : h8 - 1;
    if (last - first + 1 <= 1) continue;
    LaneSpan& span = s.spans[n_spans++];
    span.begin = n_pts;
    span.count = last - first + 1;
    span.score = probs[i];
    for (int r = first; r <= last; ++r) {
      const float e = columns[static_cast<int64_t>(i) * h8 + r];
      float x = nan_value();
      if (e > -1.0f && e < static_cast<float>(w8)) {  // (an expectation over the columns always is)
        const int col = static_cast<int>(e);
        x = static_cast<float>(col) + offsets[(static_cast<int64_t>(i) * h8 + r) * w8 + col];
      }
      x = x * p.stride;
      const float y = static_cast<float>(r) * p.stride;
      s.px[n_pts] = static_cast<double>(x * p.ratio_x);
      s.py[n_pts] = static_cast<double>(y * p.ratio_y + p.crop_top);
      ++n_pts;
    }
  }
  emit_frame(s.spans, n_spans, s.px, s.py, p.frame_width, ys, rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
