// The zoo's lane decoders, one per family, written once for a CPU thread and a CUDA thread: no allocation
// (every array lives in a caller-provided workspace), no standard containers, __host__ __device__. One call
// decodes one image's raw head outputs into one LaneSet row (points mapped to the original frame, resampled
// on its rows, highest score first), with the steps, orders and float arithmetic of the Python reference
// decoders (selfocus_ext/models/*.py). The CPU op runs them in a loop over images, the CUDA kernels one
// thread per image. Probabilities (sigmoid, softmax) come in computed by the caller with the reference's
// kernels, so that thresholds and score orders agree exactly.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

// Not force-inlined (unlike SF_HD): these are whole decoders, and numpy_sum recurses.
#ifdef __CUDACC__
#define SF_HDF __host__ __device__ inline
#else
#define SF_HDF inline
#endif

namespace selfocus {
namespace decode {

// Model input <-> frame: the input covers frame rows [crop_top, height) scaled by (sx, sy).
struct InputMap {
  float sx, sy, crop_top;
  int frame_width;
};

struct GANetParams {
  float threshold = 0.4f;
  float seed_dist = 1.0f;
  float cluster_dist = 5.0f;
  float assign_dist = 4.0f;
  int stride = 8;
};

struct LaneATTParams {
  float threshold = 0.5f;
  float nms_dist = 12.0f;
  int top_k = 4;
  int width = 400;  // input width
};

struct BezierParams {
  float threshold = 0.5f;
  int window = 9;
  int samples = 50;
  int width = 400, height = 160;  // input size
};

struct LSTRParams {
  float threshold = 0.95f;
  int max_keep = 4;               // the most probable lanes kept
  int width = 400, height = 160;  // input size
};

struct CondLaneParams {
  float threshold = 0.5f;        // proposal probability of a lane start
  float range_threshold = 0.5f;  // probability that a row belongs to the lane
  float merge_dist = 2.0f;       // proposals closer than this (proposal cells) are one lane
  int max_seeds = 16;            // lanes decoded per image, strongest proposals first
  int stride = 8;                // the shared features' stride in input pixels
};

struct SCNNParams {
  float exist_threshold = 0.5f;
  float point_threshold = 0.3f;
  int blur = 9;
  int width = 400, height = 160;  // input size
};

// ---- workspace -----------------------------------------------------------------------------------------
// Carves typed arrays out of one byte buffer; with a null base it only counts, so the same code sizes the
// workspace and uses it.
struct Carver {
  unsigned char* base;
  size_t used;
  template <typename T>
  SF_HDF T* take(int64_t n) {
    used = (used + 7) & ~static_cast<size_t>(7);
    T* p = base ? reinterpret_cast<T*>(base + used) : nullptr;
    used += static_cast<size_t>(n > 0 ? n : 0) * sizeof(T);
    return p;
  }
};

// Bytes of workspace a decoder's scratch needs: its carve run on a counting Carver.
template <typename Scratch, typename... Args>
SF_HDF size_t workspace_of(Args... args) {
  Carver c{nullptr, 0};
  Scratch::carve(c, args...);
  return c.used;
}

struct LaneSpan {
  int begin, count;  // points [begin, begin + count) of the point buffers
  float score;
};

SF_HDF float nan_value() { return __builtin_nanf(""); }
SF_HDF bool is_finite(float x) { return x == x && x - x == 0.0f; }

// Stable bottom-up merge sort of `a[n]` with `tmp[n]`; `less(x, y)` is the strict order.
template <typename Less>
SF_HDF void stable_sort(int* a, int* tmp, int n, Less less) {
  int* src = a;
  int* dst = tmp;
  for (int width = 1; width < n; width *= 2) {
    for (int lo = 0; lo < n; lo += 2 * width) {
      const int mid = lo + width < n ? lo + width : n;
      const int hi = lo + 2 * width < n ? lo + 2 * width : n;
      int i = lo, j = mid, k = lo;
      while (i < mid && j < hi) dst[k++] = less(src[j], src[i]) ? src[j++] : src[i++];
      while (i < mid) dst[k++] = src[i++];
      while (j < hi) dst[k++] = src[j++];
    }
    int* t = src;
    src = dst;
    dst = t;
  }
  if (src != a)
    for (int i = 0; i < n; ++i) a[i] = src[i];
}

// numpy's pairwise float32 sum (8 accumulators, blocks of 128), so np.mean is reproduced bit for bit.
SF_HDF float numpy_sum(const float* a, int64_t n) {
  if (n < 8) {
    float r = 0.0f;
    for (int64_t i = 0; i < n; ++i) r += a[i];
    return r;
  }
  if (n <= 128) {
    float r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_sum(a, n2) + numpy_sum(a + n2, n - n2);
}

// ---- emit: lanes in model-input pixels -> one LaneSet row --------------------------------------------
struct EmitScratch {
  int *order, *tmp, *idx;
  double *fy, *fx, *uy, *ux;
  static SF_HDF EmitScratch carve(Carver& c, int max_spans, int max_points) {
    EmitScratch s;
    s.order = c.take<int>(max_spans);
    s.tmp = c.take<int>(max_spans > max_points ? max_spans : max_points);
    s.idx = c.take<int>(max_points);
    s.fy = c.take<double>(max_points);
    s.fx = c.take<double>(max_points);
    s.uy = c.take<double>(max_points);
    s.ux = c.take<double>(max_points);
    return s;
  }
};

// numpy.interp of (py, px) (py strictly increasing, n >= 1) at y inside [py[0], py[n-1]].
SF_HDF double interp(double y, const double* py, const double* px, int n) {
  if (n == 1 || y == py[n - 1]) return px[n - 1];
  int lo = 0, hi = n;  // first index with py > y
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (py[mid] > y) hi = mid; else lo = mid + 1;
  }
  const int j = lo - 1;
  if (py[j] == y) return px[j];
  const double slope = (px[j + 1] - px[j]) / (py[j + 1] - py[j]);
  return slope * (y - py[j]) + px[j];
}

// Highest score first (stable), frame mapping in float32 (the reference's numpy expressions), equal rows
// averaged, linear resampling on `ys` inside the lane's extent, at least two points inside the frame.
SF_HDF void emit(const LaneSpan* lanes, int n, const float* px, const float* py, const InputMap& map, const float* ys,
                int rows, int max_lanes, float* xs, float* scores, EmitScratch s) {
  for (int64_t i = 0; i < static_cast<int64_t>(max_lanes) * rows; ++i) xs[i] = nan_value();
  for (int i = 0; i < max_lanes; ++i) scores[i] = nan_value();
  for (int i = 0; i < n; ++i) s.order[i] = i;
  stable_sort(s.order, s.tmp, n, [&](int a, int b) { return lanes[a].score > lanes[b].score; });
  int k = 0;
  for (int oi = 0; oi < n; ++oi) {
    const LaneSpan& lane = lanes[s.order[oi]];
    if (k >= max_lanes) continue;
    // A point whose frame position is not finite (a NaN or overflowing head value) is not a point.
    int n_pts = 0;
    for (int j = 0; j < lane.count; ++j) {
      const float fx = (px[lane.begin + j] + 0.5f) / map.sx - 0.5f;
      const float fy = (py[lane.begin + j] + 0.5f) / map.sy - 0.5f + map.crop_top;
      if (!is_finite(fx) || !is_finite(fy)) continue;
      s.fx[n_pts] = static_cast<double>(fx);
      s.fy[n_pts] = static_cast<double>(fy);
      s.idx[n_pts] = n_pts;
      ++n_pts;
    }
    if (n_pts < 2) continue;
    const double* fyv = s.fy;
    stable_sort(s.idx, s.tmp, n_pts, [&](int a, int b) { return fyv[a] < fyv[b]; });
    int u = 0;
    for (int t = 0; t < n_pts;) {
      const double y = s.fy[s.idx[t]];
      double sum = 0.0;
      int count = 0;
      for (; t < n_pts && s.fy[s.idx[t]] == y; ++t, ++count) sum += s.fx[s.idx[t]];
      s.uy[u] = y;
      s.ux[u] = sum / static_cast<double>(count);
      ++u;
    }
    float* row = xs + static_cast<int64_t>(k) * rows;
    int valid = 0;
    for (int r = 0; r < rows; ++r) {
      const double y = ys[r];
      float v = nan_value();
      if (y >= s.uy[0] && y <= s.uy[u - 1]) v = static_cast<float>(interp(y, s.uy, s.ux, u));
      if (!(v >= 0.0f && v <= static_cast<float>(map.frame_width - 1))) v = nan_value();
      valid += v == v;
      row[r] = v;
    }
    if (valid < 2) {
      for (int r = 0; r < rows; ++r) row[r] = nan_value();
      continue;
    }
    scores[k] = lane.score;
    ++k;
  }
}

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

// ---- LaneATT -------------------------------------------------------------------------------------------
struct LaneATTScratch {
  int *order, *tmp;
  float *lane_xs, *kept;
  LaneSpan* spans;
  float *px, *py;
  EmitScratch emit;
  static SF_HDF LaneATTScratch carve(Carver& c, int n, int rows, int top_k) {
    LaneATTScratch s;
    s.order = c.take<int>(n);
    s.tmp = c.take<int>(n);
    s.lane_xs = c.take<float>(rows);
    s.kept = c.take<float>(static_cast<int64_t>(top_k) * rows);
    s.spans = c.take<LaneSpan>(top_k);
    s.px = c.take<float>(static_cast<int64_t>(top_k) * rows);
    s.py = c.take<float>(static_cast<int64_t>(top_k) * rows);
    s.emit = EmitScratch::carve(c, top_k, rows);
    return s;
  }
};

SF_HDF size_t laneatt_workspace(int n, int rows, int top_k) { return workspace_of<LaneATTScratch>(n, rows, top_k); }

// score [N] foreground probabilities, reg [N, 1 + R] (length in rows, x offsets), anchor_xs [N, R] (NaN below
// an anchor's start), row_ys [R] (input rows of the offsets).
SF_HDF void laneatt_item(const float* score, const float* reg, const float* anchor_xs, const float* row_ys, int n,
                        int rows, const LaneATTParams& p, const InputMap& map, const float* ys, int frame_rows,
                        int max_lanes, float* xs, float* scores, unsigned char* workspace) {
  Carver c{workspace, 0};
  const int top_k = p.top_k > 0 ? p.top_k : 0;
  LaneATTScratch s = LaneATTScratch::carve(c, n, rows, top_k);
  int m = 0;
  for (int i = 0; i < n; ++i)
    if (score[i] > p.threshold) s.order[m++] = i;
  stable_sort(s.order, s.tmp, m, [&](int a, int b) { return score[a] > score[b]; });
  const int stride = 1 + rows;
  int kept = 0, used = 0;
  for (int t = 0; t < m; ++t) {
    const int i = s.order[t];
    if (!(score[i] > p.threshold) || kept >= top_k) break;
    const float* ax = anchor_xs + static_cast<int64_t>(i) * rows;
    int k0 = -1;
    for (int r = 0; r < rows; ++r)
      if (ax[r] == ax[r]) {
        k0 = r;
        break;
      }
    if (k0 < 0) continue;
    // rows covered from the start; NaN covers none, a length beyond the rows (inf included) all of them
    const float len = reg[static_cast<int64_t>(i) * stride];
    const float len0 = len > 0.0f ? len : 0.0f;
    const int span = len0 >= static_cast<float>(rows) ? rows : static_cast<int>(nearbyintf(len0));
    const int k1 = rows < k0 + span ? rows : k0 + span;
    int valid = 0;
    for (int r = 0; r < rows; ++r) s.lane_xs[r] = nan_value();
    for (int r = k0; r < k1; ++r) {
      const float x = ax[r] + reg[static_cast<int64_t>(i) * stride + 1 + r];
      if (is_finite(x) && x >= 0.0f && x <= static_cast<float>(p.width - 1)) {
        s.lane_xs[r] = x;
        ++valid;
      }
    }
    if (valid < 2) continue;
    bool dup = false;
    for (int q = 0; q < kept && !dup; ++q) {
      const float* other = s.kept + static_cast<int64_t>(q) * rows;
      double sum = 0.0;
      int cnt = 0;
      for (int r = 0; r < rows; ++r) {
        if (s.lane_xs[r] == s.lane_xs[r] && other[r] == other[r]) {
          sum += fabs(static_cast<double>(s.lane_xs[r]) - other[r]);
          ++cnt;
        }
      }
      dup = cnt > 0 && sum / cnt < p.nms_dist;
    }
    if (dup) continue;
    int count = 0;
    for (int r = 0; r < rows; ++r) {
      if (s.lane_xs[r] == s.lane_xs[r]) {
        s.px[used + count] = s.lane_xs[r];
        s.py[used + count] = row_ys[r];
        ++count;
      }
    }
    for (int r = 0; r < rows; ++r) s.kept[static_cast<int64_t>(kept) * rows + r] = s.lane_xs[r];
    s.spans[kept++] = {used, count, score[i]};
    used += count;
  }
  emit(s.spans, kept, s.px, s.py, map, ys, frame_rows, max_lanes, xs, scores, s.emit);
}

// ---- Bezier --------------------------------------------------------------------------------------------
struct BezierScratch {
  LaneSpan* spans;
  float *px, *py;
  EmitScratch emit;
  static SF_HDF BezierScratch carve(Carver& c, int queries, int samples) {
    BezierScratch s;
    s.spans = c.take<LaneSpan>(queries);
    s.px = c.take<float>(static_cast<int64_t>(queries) * samples);
    s.py = c.take<float>(static_cast<int64_t>(queries) * samples);
    s.emit = EmitScratch::carve(c, queries, samples);
    return s;
  }
};

SF_HDF size_t bezier_workspace(int queries, int samples) { return workspace_of<BezierScratch>(queries, samples); }

// prob [Q] existence probabilities, curves [Q, 4, 2] (normalised input coordinates).
SF_HDF void bezier_item(const float* prob, const float* curves, int queries, const BezierParams& p, const InputMap& map,
                       const float* ys, int rows, int max_lanes, float* xs, float* scores, unsigned char* workspace) {
  Carver c{workspace, 0};
  BezierScratch s = BezierScratch::carve(c, queries, p.samples);
  const int half = p.window / 2;
  int n_lanes = 0, used = 0;
  for (int q = 0; q < queries; ++q) {
    float m = -INFINITY;
    const int j0 = q - half > 0 ? q - half : 0;
    const int j1 = q + half < queries - 1 ? q + half : queries - 1;
    for (int j = j0; j <= j1; ++j) m = prob[j] > m ? prob[j] : m;
    if (!(prob[q] > p.threshold) || prob[q] != m) continue;
    const float* cp = curves + static_cast<int64_t>(q) * 8;
    int count = 0;
    for (int smp = 0; smp < p.samples; ++smp) {
      // Bernstein basis in double, rounded to float32 (as the reference)
      const double t = p.samples > 1 ? static_cast<double>(smp) / (p.samples - 1) : 0.0;
      const double u = 1.0 - t;
      const double b[4] = {u * u * u, 3 * t * u * u, 3 * t * t * u, t * t * t};
      float x = 0.0f, y = 0.0f;
      for (int k = 0; k < 4; ++k) {
        const float bk = static_cast<float>(b[k]);
        x += bk * cp[2 * k];
        y += bk * cp[2 * k + 1];
      }
      x *= static_cast<float>(p.width);
      y *= static_cast<float>(p.height);
      if (x >= 0.0f && x <= static_cast<float>(p.width - 1) && y >= 0.0f && y <= static_cast<float>(p.height - 1)) {
        s.px[used + count] = x;
        s.py[used + count] = y;
        ++count;
      }
    }
    if (count >= 2) {
      s.spans[n_lanes++] = {used, count, prob[q]};
      used += count;
    }
  }
  emit(s.spans, n_lanes, s.px, s.py, map, ys, rows, max_lanes, xs, scores, s.emit);
}

// ---- LSTR ----------------------------------------------------------------------------------------------
struct LSTRScratch {
  unsigned char* kept;
  LaneSpan* spans;
  float *px, *py;
  EmitScratch emit;
  static SF_HDF LSTRScratch carve(Carver& c, int queries, int n_rows) {
    LSTRScratch s;
    s.kept = c.take<unsigned char>(queries);
    s.spans = c.take<LaneSpan>(queries);
    s.px = c.take<float>(static_cast<int64_t>(queries) * n_rows);
    s.py = c.take<float>(static_cast<int64_t>(queries) * n_rows);
    s.emit = EmitScratch::carve(c, queries, n_rows);
    return s;
  }
};

SF_HDF size_t lstr_workspace(int queries, int n_rows) { return workspace_of<LSTRScratch>(queries, n_rows); }

// prob [Q] lane probabilities, curves [Q, 8] (upper end, lower end, k, f, m, n, b, b' in normalised input
// coordinates), sample_ys [n_rows] normalised input rows. The max_keep most probable queries above the
// threshold (ties: lower index first) are sampled at the rows strictly between their ends where
// x = k/(y-f)^2 + m/(y-f) + n + b*y - b' lies in [0, 1] (float32, left to right, as the reference).
SF_HDF void lstr_item(const float* prob, const float* curves, int queries, const float* sample_ys, int n_rows,
                      const LSTRParams& p, const InputMap& map, const float* ys, int rows, int max_lanes, float* xs,
                      float* scores, unsigned char* workspace) {
  Carver c{workspace, 0};
  LSTRScratch s = LSTRScratch::carve(c, queries, n_rows);
  for (int q = 0; q < queries; ++q) s.kept[q] = 0;
  for (int n = 0; n < p.max_keep; ++n) {
    int best = -1;
    for (int q = 0; q < queries; ++q)
      if (!s.kept[q] && prob[q] > p.threshold && (best < 0 || prob[q] > prob[best])) best = q;
    if (best < 0) break;
    s.kept[best] = 1;
  }
  const float W = static_cast<float>(p.width), H = static_cast<float>(p.height);
  int n_lanes = 0, used = 0;
  for (int q = 0; q < queries; ++q) {
    if (!s.kept[q]) continue;
    const float* cv = curves + static_cast<int64_t>(q) * 8;
    const float upper = cv[0], lower = cv[1], k = cv[2], f = cv[3], m = cv[4], n = cv[5], b = cv[6], b2 = cv[7];
    int count = 0;
    for (int r = 0; r < n_rows; ++r) {
      const float y = sample_ys[r];
      const float d = y - f;
      const float x = k / (d * d) + m / d + n + b * y - b2;
      if (!is_finite(x) || !(x >= 0.0f) || !(x <= 1.0f) || !(y > upper) || !(y < lower)) continue;
      s.px[used + count] = x * W;
      s.py[used + count] = y * H;
      ++count;
    }
    if (count >= 2) {
      s.spans[n_lanes++] = {used, count, prob[q]};
      used += count;
    }
  }
  emit(s.spans, n_lanes, s.px, s.py, map, ys, rows, max_lanes, xs, scores, s.emit);
}

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
