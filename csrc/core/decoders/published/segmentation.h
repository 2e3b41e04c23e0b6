// The published segmentation post-processings (pytorch-auto-drive's SCNN and RESA, the official RESA): each
// kept lane map, already resized to the input and softmaxed over the channels by the caller (ATen's kernels,
// the reference's), blurred with OpenCV's 9x9 normalised box filter (replicated borders) computed as OpenCV
// computes it for float32 images, and read on sample rows. Points in frame pixels.
//
// pytorch-auto-drive: slots pruned to the lane limit by their existence; on each sample row the first
// arg-max column, a point at floor(col / w * W) where its value exceeds the point threshold and that is not
// column 0. The official RESA: existence above the threshold (no pruning); a point at
// round((first arg-max + 1) * W / w - 1) where the row's maximum exceeds the point threshold.
#pragma once

#include "prune.h"

namespace selfocus {
namespace decode {

struct SegPublishedParams {
  float exist_threshold = 0.5f;
  float point_threshold = 0.3f;
  int blur = 9;
  int max_lanes = 4;   // pytorch-auto-drive's pruning limit
  bool official = false;  // the official RESA's reading rule
  int width = 800, height = 288;  // input size (the maps' size)
  int frame_width = 1640;
};

struct SegPublishedScratch {
  unsigned char* keep;
  double* work;
  float* padded;    // one padded row [width + blur - 1]
  double* boxes;    // horizontal box sums of padded rows [height + blur - 1, width]
  double* colsum;   // [width]
  float* blurred;   // [width]
  LaneSpan* spans;
  double *px, *py;
  EmitScratch emit;
  static SF_HDF SegPublishedScratch carve(Carver& c, int channels, int n_rows, const SegPublishedParams& p) {
    SegPublishedScratch s;
    s.keep = c.take<unsigned char>(channels);
    s.work = c.take<double>(channels);
    s.padded = c.take<float>(p.width + p.blur - 1);
    s.boxes = c.take<double>(static_cast<int64_t>(p.height + p.blur - 1) * p.width);
    s.colsum = c.take<double>(p.width);
    s.blurred = c.take<float>(p.width);
    s.spans = c.take<LaneSpan>(channels);
    s.px = c.take<double>(static_cast<int64_t>(channels) * n_rows);
    s.py = c.take<double>(static_cast<int64_t>(channels) * n_rows);
    s.emit = EmitScratch::carve(c, channels, n_rows);
    return s;
  }
};

SF_HDF size_t seg_published_workspace(int channels, int n_rows, const SegPublishedParams& p) {
  return workspace_of<SegPublishedScratch>(channels, n_rows, p);
}

SF_HDF int clamp_index(int i, int n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

// numpy's argmax: the first maximum, or the first NaN.
SF_HDF int np_argmax(const float* v, int n) {
  int best = 0;
  for (int i = 0; i < n; ++i) {
    if (v[i] != v[i]) return i;
    if (v[i] > v[best]) best = i;
  }
  return best;
}

// map [height, width] (one lane's probabilities at the input size). Calls row_fn(y, blurred) for every row
// y <= last_row in order, with cv2.blur's values on rows where sampled(y): horizontal running sums per padded
// row in double (the first window summed left to right, then += entering - leaving), one vertical running
// sum carried down from the top, each output row (colsum + entering) * (1 / k^2) rounded to float32.
template <typename Sampled, typename RowFn>
SF_HDF void box_blur_rows(const float* map, const SegPublishedParams& p, int last_row, SegPublishedScratch& s,
                          Sampled sampled, RowFn row_fn) {
  const int k = p.blur, half = k / 2, W = p.width, pw = p.width + k - 1;
  const int needed = last_row + k;  // padded rows -half .. last_row + half
  for (int t = 0; t < needed; ++t) {
    const float* src = map + static_cast<int64_t>(clamp_index(t - half, p.height)) * W;
    for (int i = 0; i < pw; ++i) s.padded[i] = src[clamp_index(i - half, W)];
    double* out = s.boxes + static_cast<int64_t>(t) * W;
    double run = 0.0;
    for (int i = 0; i < k; ++i) run += static_cast<double>(s.padded[i]);
    out[0] = run;
    for (int x = 1; x < W; ++x) {
      run += static_cast<double>(s.padded[x + k - 1]) - static_cast<double>(s.padded[x - 1]);
      out[x] = run;
    }
  }
  const double norm = 1.0 / (static_cast<double>(k) * k);
  for (int x = 0; x < W; ++x) s.colsum[x] = 0.0;
  for (int t = 0; t < k - 1; ++t)
    for (int x = 0; x < W; ++x) s.colsum[x] += s.boxes[static_cast<int64_t>(t) * W + x];
  for (int y = 0; y <= last_row; ++y) {
    const double* entering = s.boxes + static_cast<int64_t>(y + k - 1) * W;
    const double* leaving = s.boxes + static_cast<int64_t>(y) * W;
    if (!sampled(y)) {
      for (int x = 0; x < W; ++x) s.colsum[x] = (s.colsum[x] + entering[x]) - leaving[x];
      continue;
    }
    for (int x = 0; x < W; ++x) {
      const double sum = s.colsum[x] + entering[x];
      s.blurred[x] = static_cast<float>(sum * norm);
      s.colsum[x] = sum - leaving[x];
    }
    row_fn(y, s.blurred);
  }
}

// prob [channels, height, width] (background first), exist [channels - 1] probabilities, sample_rows [n_rows]
// input rows (negative: not read) with frame_rows [n_rows] their frame y.
SF_HDF void seg_published_item(const float* prob, const float* exist, int channels, const int* sample_rows,
                               const double* frame_rows, int n_rows, const SegPublishedParams& p, const float* ys,
                               int rows, int max_lanes, float* xs, float* scores, unsigned char* workspace) {
  Carver c{workspace, 0};
  SegPublishedScratch s = SegPublishedScratch::carve(c, channels, n_rows, p);
  const int slots = channels - 1;
  for (int q = 0; q < slots; ++q) s.keep[q] = exist[q] > p.exist_threshold;
  if (!p.official) prune_lanes(exist, s.keep, s.work, slots, p.max_lanes);
  int last_row = -1;
  for (int i = 0; i < n_rows; ++i) last_row = sample_rows[i] > last_row ? sample_rows[i] : last_row;
  const int64_t plane = static_cast<int64_t>(p.width) * p.height;
  const double W = static_cast<double>(p.frame_width), w = static_cast<double>(p.width);
  int n_lanes = 0, used = 0;
  for (int q = 0; q < slots; ++q) {
    if (!s.keep[q] || last_row < 0) continue;
    int count = 0;
    box_blur_rows(
        prob + (q + 1) * plane, p, last_row, s,
        [&](int y) {
          for (int i = 0; i < n_rows; ++i)
            if (sample_rows[i] == y) return true;
          return false;
        },
        [&](int y, const float* line) {
          const int col = np_argmax(line, p.width);
          // the official rule reads the row's maximum: line[col] (NaN when any value is NaN, as numpy's max)
          const bool official_point = line[col] > p.point_threshold;
          // every sample entry on this row, in sample order (rows may repeat)
          for (int i = 0; i < n_rows; ++i) {
            if (sample_rows[i] != y) continue;
            if (p.official) {
              if (!official_point) continue;
              s.px[used + count] = nearbyint(static_cast<double>(col + 1) * W / w - 1.0);
            } else {
              if (!(line[col] > p.point_threshold)) continue;
              const double x = floor(static_cast<double>(col) / w * W);
              if (!(x > 0.0)) continue;
              s.px[used + count] = x;
            }
            s.py[used + count] = frame_rows[i];
            ++count;
          }
        });
    // (points come in row order, the reference lists them in sample order: emit sorts them by row)
    if (count >= 2) {
      s.spans[n_lanes++] = {used, count, exist[q]};
      used += count;
    }
  }
  emit_frame(s.spans, n_lanes, s.px, s.py, p.frame_width, ys, rows, max_lanes, xs, scores, s.emit);
}

}  // namespace decode
}  // namespace selfocus
