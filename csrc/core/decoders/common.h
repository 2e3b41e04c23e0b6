// Shared parts of the per-family lane decoders (csrc/core/decoders/*.h): the input-to-frame map, the
// workspace carver, lane spans and their sort, and emit (lanes in model-input pixels -> one LaneSet row).
// The decoders are written once for a CPU thread and a CUDA thread: no allocation (every array lives in a
// caller-provided workspace), no standard containers, __host__ __device__. One call decodes one image's raw
// head outputs into one LaneSet row (points mapped to the original frame, resampled on its rows, highest
// score first), with the steps, orders and float arithmetic of the Python reference decoders. The CPU op
// runs them in a loop over images, the CUDA kernels one thread per image. Probabilities (sigmoid, softmax)
// come in computed by the caller with the reference's kernels, so that thresholds and score orders agree.
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

// Highest score first (stable), equal rows averaged, linear resampling on `ys` inside the lane's extent, at
// least two points inside the frame. `point(j, &fx, &fy)` gives point j of the point buffers in frame
// pixels and whether it is a point (finite).
template <typename Point>
SF_HDF void emit_points(const LaneSpan* lanes, int n, Point point, int frame_width, const float* ys, int rows,
                        int max_lanes, float* xs, float* scores, EmitScratch s) {
  for (int64_t i = 0; i < static_cast<int64_t>(max_lanes) * rows; ++i) xs[i] = nan_value();
  for (int i = 0; i < max_lanes; ++i) scores[i] = nan_value();
  for (int i = 0; i < n; ++i) s.order[i] = i;
  stable_sort(s.order, s.tmp, n, [&](int a, int b) { return lanes[a].score > lanes[b].score; });
  int k = 0;
  for (int oi = 0; oi < n; ++oi) {
    const LaneSpan& lane = lanes[s.order[oi]];
    if (k >= max_lanes) continue;
    int n_pts = 0;
    for (int j = 0; j < lane.count; ++j) {
      double fx, fy;
      if (!point(lane.begin + j, &fx, &fy)) continue;
      s.fx[n_pts] = fx;
      s.fy[n_pts] = fy;
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
      if (!(v >= 0.0f && v <= static_cast<float>(frame_width - 1))) v = nan_value();
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

// Lanes in model-input pixels: mapped to the frame in float32 (the reference's numpy expressions); a point
// whose frame position is not finite (a NaN or overflowing head value) is not a point.
SF_HDF void emit(const LaneSpan* lanes, int n, const float* px, const float* py, const InputMap& map, const float* ys,
                int rows, int max_lanes, float* xs, float* scores, EmitScratch s) {
  emit_points(
      lanes, n,
      [&](int j, double* fx, double* fy) {
        const float x = (px[j] + 0.5f) / map.sx - 0.5f;
        const float y = (py[j] + 0.5f) / map.sy - 0.5f + map.crop_top;
        *fx = static_cast<double>(x);
        *fy = static_cast<double>(y);
        return is_finite(x) && is_finite(y);
      },
      map.frame_width, ys, rows, max_lanes, xs, scores, s);
}

// Lanes already in frame pixels, in double (the published post-processing's points).
SF_HDF void emit_frame(const LaneSpan* lanes, int n, const double* px, const double* py, int frame_width,
                       const float* ys, int rows, int max_lanes, float* xs, float* scores, EmitScratch s) {
  emit_points(
      lanes, n,
      [&](int j, double* fx, double* fy) {
        *fx = px[j];
        *fy = py[j];
        return px[j] == px[j] && px[j] - px[j] == 0.0 && py[j] == py[j] && py[j] - py[j] == 0.0;
      },
      frame_width, ys, rows, max_lanes, xs, scores, s);
}

}  // namespace decode
}  // namespace selfocus
