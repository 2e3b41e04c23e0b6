#include "lane_decode.h"

#include "decode_portable.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

// Wider vector units for the map loops of the SCNN decoder (elementwise, so results do not change).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SELFOCUS_NO_CLONES)
#define SF_DECODE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SF_DECODE_CLONES
#endif

namespace selfocus {
namespace decode {
namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// numpy's interp and pairwise sum, OpenCV's reflect-101 border and PyTorch's bilinear taps are shared with the
// portable decoders, so that both reproduce the references with the same code.
using portable::interp;
using portable::numpy_sum;
using portable::reflect101;

}  // namespace

void emit_lanes(const std::vector<Lane>& lanes, const InputMap& map, const float* ys, int rows, int max_lanes,
                float* xs, float* scores) {
  std::fill(xs, xs + static_cast<size_t>(max_lanes) * rows, kNaN);
  std::fill(scores, scores + max_lanes, kNaN);
  std::vector<size_t> order(lanes.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lanes[a].score > lanes[b].score; });
  int k = 0;
  std::vector<std::pair<double, double>> pts;  // (frame y, frame x)
  std::vector<double> uy, ux;
  std::vector<float> row(rows);
  for (size_t i : order) {
    const Lane& lane = lanes[i];
    if (lane.x.size() < 2 || k >= max_lanes) continue;
    pts.clear();
    for (size_t j = 0; j < lane.x.size(); ++j) {
      // float32 arithmetic, as the reference's numpy expressions on float32 arrays
      const float fx = (lane.x[j] + 0.5f) / map.sx - 0.5f;
      const float fy = (lane.y[j] + 0.5f) / map.sy - 0.5f + map.crop_top;
      pts.emplace_back(static_cast<double>(fy), static_cast<double>(fx));
    }
    // rows sharing a y are averaged (summed in order of occurrence)
    std::vector<size_t> idx(pts.size());
    std::iota(idx.begin(), idx.end(), size_t{0});
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return pts[a].first < pts[b].first; });
    uy.clear();
    ux.clear();
    for (size_t t = 0; t < idx.size();) {
      // equal-y points are summed in their original order (the stable sort kept it), as np.bincount does
      const double y = pts[idx[t]].first;
      double s = 0.0;
      size_t count = 0;
      for (; t < idx.size() && pts[idx[t]].first == y; ++t, ++count) s += pts[idx[t]].second;
      uy.push_back(y);
      ux.push_back(s / static_cast<double>(count));
    }
    int valid = 0;
    for (int r = 0; r < rows; ++r) {
      const double y = ys[r];
      float v = kNaN;
      if (y >= uy.front() && y <= uy.back()) v = static_cast<float>(interp(y, uy.data(), ux.data(), static_cast<int>(uy.size())));
      if (!(v >= 0.0f && v <= static_cast<float>(map.frame_width - 1))) v = kNaN;
      valid += v == v;
      row[r] = v;
    }
    if (valid < 2) continue;
    std::copy(row.begin(), row.end(), xs + static_cast<size_t>(k) * rows);
    scores[k] = lane.score;
    ++k;
  }
}

std::vector<Lane> ganet_image(const float* prob, const float* pts, const float* intr, int h, int w,
                              const GANetParams& p) {
  const size_t plane = static_cast<size_t>(h) * w;
  // keypoints: heatmap probability above threshold and not below its left/right neighbours (1x3 NMS)
  struct Kp {
    int r, c;
    float conf;
  };
  std::vector<Kp> kps;
  for (int r = 0; r < h; ++r) {
    for (int c = 0; c < w; ++c) {
      const float v = prob[r * w + c];
      const float left = c > 0 ? prob[r * w + c - 1] : -INFINITY;
      const float right = c + 1 < w ? prob[r * w + c + 1] : -INFINITY;
      if (v >= left && v >= right && v > p.threshold) kps.push_back({r, c, v});
    }
  }
  std::vector<Lane> lanes;
  if (kps.empty()) return lanes;
  const size_t n = kps.size();
  std::vector<double> pos_x(n), pos_y(n), start_x(n), start_y(n);
  std::vector<bool> seed(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t o = static_cast<size_t>(kps[i].r) * w + kps[i].c;
    const double cx = kps[i].c + 0.5, cy = kps[i].r + 0.5;
    pos_x[i] = cx + intr[o];
    pos_y[i] = cy + intr[plane + o];
    start_x[i] = cx + pts[o];
    start_y[i] = cy + pts[plane + o];
    seed[i] = std::hypot(pts[o], pts[plane + o]) < p.seed_dist;
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return kps[a].conf > kps[b].conf; });
  std::vector<std::pair<double, double>> centres;
  for (size_t i : order) {
    if (!seed[i]) continue;
    bool far = true;
    for (const auto& c : centres) far = far && std::hypot(pos_x[i] - c.first, pos_y[i] - c.second) > p.cluster_dist;
    if (far) centres.emplace_back(pos_x[i], pos_y[i]);
  }
  if (centres.empty()) return lanes;
  std::vector<std::vector<size_t>> members(centres.size());
  for (size_t i = 0; i < n; ++i) {
    size_t best = 0;
    double best_d = INFINITY;
    for (size_t c = 0; c < centres.size(); ++c) {
      const double d = std::hypot(start_x[i] - centres[c].first, start_y[i] - centres[c].second);
      if (d < best_d) {
        best_d = d;
        best = c;
      }
    }
    if (best_d <= p.assign_dist) members[best].push_back(i);
  }
  for (auto& m : members) {
    if (m.size() < 2) continue;
    std::stable_sort(m.begin(), m.end(), [&](size_t a, size_t b) { return pos_y[a] > pos_y[b]; });
    Lane lane;
    std::vector<float> conf;
    for (size_t i : m) {
      lane.x.push_back(static_cast<float>(pos_x[i]) * static_cast<float>(p.stride) - 0.5f);
      lane.y.push_back(static_cast<float>(pos_y[i]) * static_cast<float>(p.stride) - 0.5f);
    }
    // the reference averages the confidences in keypoint (row-major) order
    std::vector<size_t> by_index(m.begin(), m.end());
    std::sort(by_index.begin(), by_index.end());
    for (size_t i : by_index) conf.push_back(kps[i].conf);
    lane.score = numpy_sum(conf.data(), conf.size()) / static_cast<float>(conf.size());
    lanes.push_back(std::move(lane));
  }
  return lanes;
}

std::vector<Lane> laneatt_image(const float* score, const float* reg, const float* anchor_xs, const float* row_ys, int n,
                                int rows, const LaneATTParams& p) {
  // only anchors above the threshold can be kept: sort just those (stable, as the reference's full sort)
  std::vector<int> order;
  for (int i = 0; i < n; ++i)
    if (score[i] > p.threshold) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return score[a] > score[b]; });
  std::vector<std::vector<float>> kept;
  std::vector<Lane> lanes;
  const int stride = 1 + rows;
  for (int i : order) {
    if (!(score[i] > p.threshold) || static_cast<int>(kept.size()) >= p.top_k) break;
    const float* ax = anchor_xs + static_cast<size_t>(i) * rows;
    int k0 = -1;
    for (int r = 0; r < rows; ++r)
      if (ax[r] == ax[r]) {
        k0 = r;
        break;
      }
    if (k0 < 0) continue;
    const float len = reg[static_cast<size_t>(i) * stride];
    const int k1 = std::min(rows, k0 + static_cast<int>(std::nearbyint(len > 0.0f ? len : 0.0f)));
    std::vector<float> lane_xs(rows, kNaN);
    int valid = 0;
    for (int r = k0; r < k1; ++r) {
      const float x = ax[r] + reg[static_cast<size_t>(i) * stride + 1 + r];
      if (std::isfinite(x) && x >= 0.0f && x <= static_cast<float>(p.width - 1)) {
        lane_xs[r] = x;
        ++valid;
      }
    }
    if (valid < 2) continue;
    bool dup = false;
    for (const auto& other : kept) {
      double sum = 0.0;
      int cnt = 0;
      for (int r = 0; r < rows; ++r) {
        if (lane_xs[r] == lane_xs[r] && other[r] == other[r]) {
          sum += std::fabs(static_cast<double>(lane_xs[r]) - other[r]);
          ++cnt;
        }
      }
      if (cnt > 0 && sum / cnt < p.nms_dist) {
        dup = true;
        break;
      }
    }
    if (dup) continue;
    Lane lane;
    for (int r = 0; r < rows; ++r) {
      if (lane_xs[r] == lane_xs[r]) {
        lane.x.push_back(lane_xs[r]);
        lane.y.push_back(row_ys[r]);
      }
    }
    lane.score = score[i];
    kept.push_back(std::move(lane_xs));
    lanes.push_back(std::move(lane));
  }
  return lanes;
}

std::vector<Lane> bezier_image(const float* prob, const float* curves, int queries, const BezierParams& p) {
  // Bernstein basis of the sample parameters, in double then rounded to float32 (as the reference)
  std::vector<float> basis(static_cast<size_t>(p.samples) * 4);
  for (int s = 0; s < p.samples; ++s) {
    const double t = p.samples > 1 ? static_cast<double>(s) / (p.samples - 1) : 0.0;
    const double u = 1.0 - t;
    const double b[4] = {u * u * u, 3 * t * u * u, 3 * t * t * u, t * t * t};
    for (int k = 0; k < 4; ++k) basis[s * 4 + k] = static_cast<float>(b[k]);
  }
  const int half = p.window / 2;
  std::vector<Lane> lanes;
  for (int q = 0; q < queries; ++q) {
    float m = -INFINITY;
    for (int j = std::max(0, q - half); j <= std::min(queries - 1, q + half); ++j) m = prob[j] > m ? prob[j] : m;
    if (!(prob[q] > p.threshold) || prob[q] != m) continue;
    const float* c = curves + static_cast<size_t>(q) * 8;
    Lane lane;
    for (int s = 0; s < p.samples; ++s) {
      float x = 0.0f, y = 0.0f;
      for (int k = 0; k < 4; ++k) {
        x += basis[s * 4 + k] * c[2 * k];
        y += basis[s * 4 + k] * c[2 * k + 1];
      }
      x *= static_cast<float>(p.width);
      y *= static_cast<float>(p.height);
      if (x >= 0.0f && x <= static_cast<float>(p.width - 1) && y >= 0.0f && y <= static_cast<float>(p.height - 1)) {
        lane.x.push_back(x);
        lane.y.push_back(y);
      }
    }
    if (lane.x.size() >= 2) {
      lane.score = prob[q];
      lanes.push_back(std::move(lane));
    }
  }
  return lanes;
}

namespace {

// Source rows/columns and weights of PyTorch's bilinear interpolate(align_corners=False).
struct Tap {
  int i0, i1;
  float w0, w1;
};

std::vector<Tap> bilinear_taps(int in, int out) {
  std::vector<Tap> taps(out);
  for (int d = 0; d < out; ++d) portable::bilinear_tap(in, out, d, &taps[d].i0, &taps[d].i1, &taps[d].w0, &taps[d].w1);
  return taps;
}

}  // namespace

using portable::kTieTolerance;

SF_DECODE_CLONES
std::vector<Lane> scnn_image(const float* prob, const float* exist, int channels, int h, int w, const int* sample_rows,
                             int n_rows, const SCNNParams& p) {
  const size_t plane = static_cast<size_t>(h) * w;
  const auto ty = bilinear_taps(h, p.height);
  const auto tx = bilinear_taps(w, p.width);
  const int half = p.blur / 2;
  std::vector<Lane> lanes;
  std::vector<double> colsum(p.width);
  std::vector<double> ext(p.width + 2 * half + 1);  // colsum with its reflected borders
  std::vector<float> blurred(p.width);
  std::vector<float> hrows(static_cast<size_t>(h) * p.width);  // source rows interpolated along x
  std::vector<float> up(static_cast<size_t>(p.height) * p.width);
  std::vector<char> have(p.height);
  for (int lane_c = 1; lane_c < channels; ++lane_c) {
    const float e = exist[lane_c - 1];
    if (!(e > p.exist_threshold)) continue;
    const float* pc = prob + static_cast<size_t>(lane_c) * plane;
    for (int sr = 0; sr < h; ++sr) {
      float* dst = hrows.data() + static_cast<size_t>(sr) * p.width;
      for (int x = 0; x < p.width; ++x) {
        const Tap& b = tx[x];
        dst[x] = b.w0 * pc[sr * w + b.i0] + b.w1 * pc[sr * w + b.i1];
      }
    }
    std::fill(have.begin(), have.end(), 0);
    Lane lane;
    for (int k = 0; k < n_rows; ++k) {
      const int r = sample_rows[k];
      // the normalised box filter (as OpenCV's blur, reflect-101 borders) of the upsampled map at row r;
      // upsampled rows are computed once, when first needed
      std::fill(colsum.begin(), colsum.end(), 0.0);
      for (int d = -half; d <= half; ++d) {
        const int rr = reflect101(r + d, p.height);
        float* ur = up.data() + static_cast<size_t>(rr) * p.width;
        if (!have[rr]) {
          const Tap& a = ty[rr];
          const float* top = hrows.data() + static_cast<size_t>(a.i0) * p.width;
          const float* bot = hrows.data() + static_cast<size_t>(a.i1) * p.width;
          for (int x = 0; x < p.width; ++x) ur[x] = a.w0 * top[x] + a.w1 * bot[x];
          have[rr] = 1;
        }
        for (int x = 0; x < p.width; ++x) colsum[x] += ur[x];
      }
      float best_v = -INFINITY;
      const double norm = 1.0 / (static_cast<double>(p.blur) * p.blur);
      // the running box sum reads the reflected columns from a padded copy (same values, same order)
      for (int x = -half - 1; x < p.width + half; ++x) ext[x + half + 1] = colsum[reflect101(x, p.width)];
      const double* e = ext.data() + half + 1;  // e[x] = colsum[reflect101(x)] for x in [-half - 1, width + half)
      double run = 0.0;
      for (int d = -half; d <= half; ++d) run += e[d];
      for (int x = 0; x < p.width; ++x) {
        if (x > 0) run += e[x + half] - e[x - half - 1];
        blurred[x] = static_cast<float>(run * norm);
        best_v = blurred[x] > best_v ? blurred[x] : best_v;
      }
      // the leftmost column within kTieTolerance of the maximum (plateaus of equal probability would
      // otherwise be decided by rounding)
      int best = 0;
      while (blurred[best] < best_v - kTieTolerance) ++best;
      if (best_v > p.point_threshold) {
        lane.x.push_back(static_cast<float>(best));
        lane.y.push_back(static_cast<float>(r));
      }
    }
    if (lane.x.size() >= 2) {
      lane.score = e;
      lanes.push_back(std::move(lane));
    }
  }
  return lanes;
}

}  // namespace decode
}  // namespace selfocus
