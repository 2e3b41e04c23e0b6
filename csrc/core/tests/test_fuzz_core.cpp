// Random hostile input through the C++ core: every decoder (head values with NaN, inf, huge and tiny
// numbers, random sizes and settings), the CULane counting (lanes with NaN/inf/huge points, both matchers)
// and the Lane Distortion Score. Checks the outputs' invariants and a time bound per case; meant to run
// under AddressSanitizer and UndefinedBehaviorSanitizer (cmake -DSELFOCUS_SANITIZE=ON), where any
// out-of-bounds access or undefined operation aborts the run.
//
// Runs for SELFOCUS_FUZZ_SECONDS seconds (default 3), seed SELFOCUS_FUZZ_SEED (default 1).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <vector>

#include "../culane_eval.h"
#include "../lane_decoders.h"
#include "../lane_distortion_cpu.h"
#include "check.h"

using namespace selfocus;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kCaseSeconds = 5.0;  // generous even under the sanitizers; real cases take milliseconds

struct Gen {
  std::mt19937_64 rng;
  int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
  bool chance(double p) { return uniform(0.0, 1.0) < p; }

  // A value on a random scale, sometimes special.
  float value(double special_rate, float scale) {
    if (chance(special_rate)) {
      static const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                                       std::numeric_limits<float>::infinity(),
                                       -std::numeric_limits<float>::infinity(),
                                       3.0e38f,
                                       -3.0e38f,
                                       1e-40f,
                                       0.0f,
                                       -0.0f,
                                       2147483648.0f};
      return specials[uniform_int(0, 8)];
    }
    return static_cast<float>(uniform(-1.0, 1.0)) * scale;
  }
  float probability(double special_rate) {
    if (chance(special_rate)) return chance(0.5) ? std::numeric_limits<float>::quiet_NaN() : 1.0f;
    return static_cast<float>(uniform(0.0, 1.0));
  }
  std::vector<float> values(int64_t n, double special_rate, float scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = value(special_rate, scale);
    return v;
  }
  std::vector<float> probabilities(int64_t n, double special_rate) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = probability(special_rate);
    return v;
  }
  float scale() { return static_cast<float>(std::pow(10.0, uniform(-2.0, 6.0))); }
};

struct Frame {
  decode::InputMap map;
  std::vector<float> ys;
  int max_lanes;
};

Frame random_frame(Gen& g) {
  Frame f;
  f.map.sx = static_cast<float>(g.uniform(0.05, 4.0));
  f.map.sy = static_cast<float>(g.uniform(0.05, 4.0));
  f.map.crop_top = static_cast<float>(g.uniform(-100.0, 400.0));
  f.map.frame_width = g.uniform_int(1, 2000);
  const int rows = g.uniform_int(0, 60);
  for (int r = 0; r < rows; ++r) f.ys.push_back(static_cast<float>(g.uniform(-50.0, 700.0)));
  if (g.chance(0.5)) std::sort(f.ys.begin(), f.ys.end());
  f.max_lanes = g.uniform_int(1, 64);
  return f;
}

// Every present lane (a score that is not NaN) has at least two points, every point inside the frame;
// absent lanes are all NaN.
void check_laneset(const char* what, const Frame& f, const std::vector<float>& xs, const std::vector<float>& scores) {
  const int rows = static_cast<int>(f.ys.size());
  for (int l = 0; l < f.max_lanes; ++l) {
    const bool present = scores[l] == scores[l];
    int points = 0;
    for (int r = 0; r < rows; ++r) {
      const float x = xs[static_cast<size_t>(l) * rows + r];
      if (x != x) continue;
      ++points;
      if (!(x >= 0.0f && x <= static_cast<float>(f.map.frame_width - 1)))
        SF_FAIL("%s: lane %d row %d x = %g outside the frame width %d", what, l, r, x, f.map.frame_width);
    }
    if (present && points < 2) SF_FAIL("%s: lane %d has a score but %d points", what, l, points);
    if (!present && points > 0) SF_FAIL("%s: lane %d has no score but %d points", what, l, points);
  }
}

template <typename Fn>
void timed(const char* what, Fn&& fn) {
  const auto t0 = Clock::now();
  fn();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (s > kCaseSeconds) SF_FAIL("%s: one case took %.1f s", what, s);
}

struct Outputs {
  std::vector<float> xs, scores;
  explicit Outputs(const Frame& f)
      : xs(static_cast<size_t>(f.max_lanes) * f.ys.size()), scores(static_cast<size_t>(f.max_lanes)) {}
};

void fuzz_ganet(Gen& g) {
  const Frame f = random_frame(g);
  const int h = g.uniform_int(1, 40), w = g.uniform_int(1, 60);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  std::vector<float> prob = g.probabilities(static_cast<int64_t>(h) * w, sp);
  if (g.chance(0.2)) std::fill(prob.begin(), prob.end(), 1.0f);  // a saturated map: every cell a keypoint
  const float scale = g.scale();
  std::vector<float> pts = g.values(2LL * h * w, sp, scale), intr = g.values(2LL * h * w, sp, scale);
  if (g.chance(0.3)) std::fill(pts.begin(), pts.end(), 0.0f);  // every keypoint a seed
  decode::GANetParams p;
  p.threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.seed_dist = g.value(0.1, 5.0f);
  p.cluster_dist = g.value(0.1, 10.0f);
  p.assign_dist = g.value(0.1, 10.0f);
  p.stride = g.uniform_int(1, 32);
  std::vector<unsigned char> ws(decode::ganet_workspace(h, w));
  Outputs o(f);
  timed("ganet", [&] {
    decode::ganet_item(prob.data(), pts.data(), intr.data(), h, w, p, f.map, f.ys.data(), static_cast<int>(f.ys.size()),
                       f.max_lanes, o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("ganet", f, o.xs, o.scores);
}

void fuzz_laneatt(Gen& g) {
  const Frame f = random_frame(g);
  const int n = g.uniform_int(1, 300), rows = g.uniform_int(1, 80);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  const float scale = g.scale();
  std::vector<float> score = g.probabilities(n, sp);
  std::vector<float> reg = g.values(static_cast<int64_t>(n) * (rows + 1), sp, scale);
  for (int i = 0; i < n; ++i)
    if (g.chance(0.5)) reg[static_cast<size_t>(i) * (rows + 1)] = static_cast<float>(g.uniform(0.0, rows * 1.5));
  std::vector<float> anchor_xs(static_cast<size_t>(n) * rows), row_ys(rows);
  for (int i = 0; i < n; ++i) {
    const int start = g.uniform_int(0, rows);  // NaN before the anchor's start (all NaN when start == rows)
    for (int r = 0; r < rows; ++r)
      anchor_xs[static_cast<size_t>(i) * rows + r] =
          r < start ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(g.uniform(-50.0, 450.0));
  }
  for (int r = 0; r < rows; ++r) row_ys[r] = static_cast<float>(g.uniform(-10.0, 170.0));
  decode::LaneATTParams p;
  p.threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.nms_dist = g.value(0.1, 50.0f);
  p.top_k = g.uniform_int(0, n);
  p.width = g.uniform_int(1, 800);
  std::vector<unsigned char> ws(decode::laneatt_workspace(n, rows, p.top_k));
  Outputs o(f);
  timed("laneatt", [&] {
    decode::laneatt_item(score.data(), reg.data(), anchor_xs.data(), row_ys.data(), n, rows, p, f.map, f.ys.data(),
                         static_cast<int>(f.ys.size()), f.max_lanes, o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("laneatt", f, o.xs, o.scores);
}

void fuzz_bezier(Gen& g) {
  const Frame f = random_frame(g);
  const int q = g.uniform_int(1, 200);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  std::vector<float> prob = g.probabilities(q, sp);
  std::vector<float> curves = g.values(8LL * q, sp, g.chance(0.5) ? 1.0f : g.scale());
  decode::BezierParams p;
  p.threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.window = 2 * g.uniform_int(0, q) + 1;
  p.samples = g.uniform_int(2, 200);
  p.width = g.uniform_int(1, 800);
  p.height = g.uniform_int(1, 400);
  std::vector<unsigned char> ws(decode::bezier_workspace(q, p.samples));
  Outputs o(f);
  timed("bezier", [&] {
    decode::bezier_item(prob.data(), curves.data(), q, p, f.map, f.ys.data(), static_cast<int>(f.ys.size()),
                        f.max_lanes, o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("bezier", f, o.xs, o.scores);
}

void fuzz_lstr(Gen& g) {
  const Frame f = random_frame(g);
  const int q = g.uniform_int(1, 64), n_rows = g.uniform_int(0, 80);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  std::vector<float> prob = g.probabilities(q, sp);
  std::vector<float> curves = g.values(8LL * q, sp, g.chance(0.5) ? 1.0f : g.scale());
  std::vector<float> sample_ys = g.values(n_rows, sp, 1.5f);
  decode::LSTRParams p;
  p.threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.max_keep = g.uniform_int(0, q);
  p.width = g.uniform_int(1, 800);
  p.height = g.uniform_int(1, 400);
  std::vector<unsigned char> ws(decode::lstr_workspace(q, n_rows));
  Outputs o(f);
  timed("lstr", [&] {
    decode::lstr_item(prob.data(), curves.data(), q, sample_ys.data(), n_rows, p, f.map, f.ys.data(),
                      static_cast<int>(f.ys.size()), f.max_lanes, o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("lstr", f, o.xs, o.scores);
}

void fuzz_condlane(Gen& g) {
  const Frame f = random_frame(g);
  const int C = g.uniform_int(1, 70), h16 = g.uniform_int(1, 12), w16 = g.uniform_int(1, 30);
  const int h8 = g.uniform_int(1, 24), w8 = g.uniform_int(1, 60);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  const int64_t cells = static_cast<int64_t>(h16) * w16;
  std::vector<float> proposal = g.probabilities(cells, sp);
  std::vector<float> params = g.values(2LL * (C + 3) * cells, sp, g.chance(0.5) ? 1.0f : g.scale());
  std::vector<float> features = g.values(static_cast<int64_t>(C) * h8 * w8, sp, g.chance(0.5) ? 1.0f : g.scale());
  std::vector<float> range = g.probabilities(h8 * cells, sp);
  decode::CondLaneParams p;
  p.threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.range_threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.merge_dist = static_cast<float>(g.uniform(0.0, 5.0));
  p.max_seeds = g.uniform_int(1, 40);
  p.stride = g.uniform_int(1, 16);
  std::vector<unsigned char> ws(decode::condlane_workspace(h16, w16, p.max_seeds, h8, w8, C));
  Outputs o(f);
  timed("condlane", [&] {
    decode::condlane_item(proposal.data(), params.data(), features.data(), range.data(), C, h16, w16, h8, w8, p, f.map,
                          f.ys.data(), static_cast<int>(f.ys.size()), f.max_lanes, o.xs.data(), o.scores.data(),
                          ws.data());
  });
  check_laneset("condlane", f, o.xs, o.scores);
}

void fuzz_scnn(Gen& g) {
  const Frame f = random_frame(g);
  const int channels = g.uniform_int(1, 6), h = g.uniform_int(1, 30), w = g.uniform_int(1, 60);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  std::vector<float> prob = g.probabilities(static_cast<int64_t>(channels) * h * w, sp);
  std::vector<float> exist = g.probabilities(channels - 1, sp);
  decode::SCNNParams p;
  p.exist_threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.point_threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.blur = 2 * g.uniform_int(0, 12) + 1;
  p.width = g.uniform_int(1, 500);
  p.height = g.uniform_int(1, 200);
  std::vector<int> sample_rows(static_cast<size_t>(g.uniform_int(0, 40)));
  for (int& r : sample_rows) r = g.uniform_int(0, p.height - 1);
  std::vector<unsigned char> ws(decode::scnn_workspace(channels, h, static_cast<int>(sample_rows.size()), p));
  Outputs o(f);
  timed("scnn", [&] {
    decode::scnn_item(prob.data(), exist.data(), channels, h, w, sample_rows.data(),
                      static_cast<int>(sample_rows.size()), p, f.map, f.ys.data(), static_cast<int>(f.ys.size()),
                      f.max_lanes, o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("scnn", f, o.xs, o.scores);
}

void fuzz_ufld(Gen& g) {
  Frame f = random_frame(g);
  f.map = decode::InputMap{1.0f, 1.0f, 0.0f, f.map.frame_width};  // the decoder's points are frame pixels
  const int cells = g.uniform_int(2, 60), rows = g.uniform_int(1, 30), lanes = g.uniform_int(1, 8);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  const int64_t plane = static_cast<int64_t>(rows) * lanes;
  // prob need not be a softmax here: the decoder must stay inside its buffers for any values
  std::vector<float> prob = g.chance(0.5) ? g.probabilities(cells * plane, sp) : g.values(cells * plane, sp, g.scale());
  std::vector<float> loc = g.values(cells * plane, sp, g.chance(0.5) ? 1.0f : g.scale());
  std::vector<float> exist = g.values(plane, sp, g.chance(0.5) ? 1.0f : g.scale());
  decode::UFLDParams p;
  p.input_width = g.uniform_int(2, 2000);
  p.frame_height = g.uniform_int(1, 1000);
  p.row_gap = g.uniform_int(0, 40);
  std::vector<unsigned char> ws(decode::ufld_workspace(rows, lanes));
  Outputs o(f);
  timed("ufld", [&] {
    decode::ufld_item(prob.data(), loc.data(), exist.data(), cells, rows, lanes, p, f.map, f.ys.data(),
                      static_cast<int>(f.ys.size()), f.max_lanes, o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("ufld", f, o.xs, o.scores);
}

void fuzz_lstr_published(Gen& g) {
  Frame f = random_frame(g);
  const int q = g.uniform_int(1, 64);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  std::vector<float> prob = g.probabilities(q, sp);
  std::vector<float> curves = g.values(8LL * q, sp, g.chance(0.5) ? 1.0f : g.scale());
  decode::LSTRPublishedParams p;
  p.threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.max_lanes = g.uniform_int(0, q);
  p.gap = g.uniform_int(0, 40);
  p.points = g.uniform_int(0, 60);
  p.frame_width = f.map.frame_width;
  p.frame_height = g.uniform_int(1, 1000);
  std::vector<unsigned char> ws(decode::lstr_published_workspace(q, p.points));
  Outputs o(f);
  timed("lstr_published", [&] {
    decode::lstr_published_item(prob.data(), curves.data(), q, p, f.ys.data(), static_cast<int>(f.ys.size()),
                                f.max_lanes, o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("lstr_published", f, o.xs, o.scores);
}

void fuzz_bezier_published(Gen& g) {
  Frame f = random_frame(g);
  const int q = g.uniform_int(1, 200);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  std::vector<float> prob = g.probabilities(q, sp);
  std::vector<float> curves = g.values(8LL * q, sp, g.chance(0.5) ? 1.0f : g.scale());
  decode::BezierPublishedParams p;
  p.threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.window = g.chance(0.2) ? 0 : 2 * g.uniform_int(0, q) + 1;
  p.max_lanes = g.uniform_int(0, q);
  p.samples = g.uniform_int(2, 200);
  p.frame_width = f.map.frame_width;
  p.frame_height = g.uniform_int(1, 1000);
  std::vector<unsigned char> ws(decode::bezier_published_workspace(q, p.samples));
  Outputs o(f);
  timed("bezier_published", [&] {
    decode::bezier_published_item(prob.data(), curves.data(), q, p, f.ys.data(), static_cast<int>(f.ys.size()),
                                  f.max_lanes, o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("bezier_published", f, o.xs, o.scores);
}

void fuzz_seg_published(Gen& g) {
  Frame f = random_frame(g);
  const int channels = g.uniform_int(2, 6);
  decode::SegPublishedParams p;
  p.width = g.uniform_int(1, 120);
  p.height = g.uniform_int(1, 60);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  std::vector<float> prob = g.probabilities(static_cast<int64_t>(channels) * p.width * p.height, sp);
  std::vector<float> exist = g.probabilities(channels - 1, sp);
  p.exist_threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.point_threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.blur = 2 * g.uniform_int(0, 12) + 1;
  p.max_lanes = g.uniform_int(0, channels);
  p.official = g.chance(0.5);
  p.frame_width = f.map.frame_width;
  const int n_rows = g.uniform_int(0, 40);
  std::vector<int> sample_rows(static_cast<size_t>(n_rows));
  std::vector<double> frame_rows(static_cast<size_t>(n_rows));
  for (int i = 0; i < n_rows; ++i) {
    sample_rows[i] = g.uniform_int(-3, p.height - 1);
    frame_rows[i] = g.uniform(-50.0, 700.0);
  }
  std::vector<unsigned char> ws(decode::seg_published_workspace(channels, n_rows, p));
  Outputs o(f);
  timed("seg_published", [&] {
    decode::seg_published_item(prob.data(), exist.data(), channels, sample_rows.data(), frame_rows.data(), n_rows, p,
                               f.ys.data(), static_cast<int>(f.ys.size()), f.max_lanes, o.xs.data(), o.scores.data(),
                               ws.data());
  });
  check_laneset("seg_published", f, o.xs, o.scores);
}

void fuzz_anchor_published(Gen& g) {
  Frame f = random_frame(g);
  const int n = g.uniform_int(1, 120), points = g.uniform_int(2, 80), n_samples = g.uniform_int(0, 100);
  const bool laneatt = g.chance(0.5);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  std::vector<float> prob = g.probabilities(n, sp);
  const int stride = (laneatt ? 2 : 4) + points;
  std::vector<float> lanes = g.values(static_cast<int64_t>(n) * stride, sp, g.chance(0.5) ? 1.0f : g.scale());
  std::vector<float> prior_ys(static_cast<size_t>(points));
  for (int r = 0; r < points; ++r) prior_ys[r] = 1.0f - static_cast<float>(r) / static_cast<float>(points - 1);
  std::vector<double> sample_ys(static_cast<size_t>(n_samples));
  for (int i = 0; i < n_samples; ++i) sample_ys[i] = (i + g.uniform(0.0, 0.9)) / (n_samples + 1);
  decode::AnchorPublishedParams p;
  p.threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.nms_threshold = static_cast<float>(g.uniform(0.0, 100.0));
  p.top_k = g.uniform_int(0, 8);
  p.input_width = g.uniform_int(2, 1000);
  p.frame_width = f.map.frame_width;
  p.frame_height = g.uniform_int(1, 1000);
  p.crop_top = static_cast<float>(g.uniform(0.0, 400.0));
  p.official = g.chance(0.5);
  std::vector<unsigned char> ws(decode::anchor_published_workspace(n, points, n_samples, p.top_k));
  Outputs o(f);
  timed("anchor_published", [&] {
    if (laneatt)
      decode::laneatt_published_item(prob.data(), lanes.data(), n, points, prior_ys.data(), sample_ys.data(),
                                     n_samples, p, f.ys.data(), static_cast<int>(f.ys.size()), f.max_lanes,
                                     o.xs.data(), o.scores.data(), ws.data());
    else
      decode::clrnet_published_item(prob.data(), lanes.data(), n, points, prior_ys.data(), sample_ys.data(),
                                    n_samples, p, f.ys.data(), static_cast<int>(f.ys.size()), f.max_lanes,
                                    o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("anchor_published", f, o.xs, o.scores);
}

void fuzz_ganet_published(Gen& g) {
  Frame f = random_frame(g);
  const int h = g.uniform_int(1, 40), w = g.uniform_int(1, 100);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  std::vector<float> prob = g.probabilities(static_cast<int64_t>(h) * w, sp);
  if (g.chance(0.2)) std::fill(prob.begin(), prob.end(), 0.9999f);  // saturated: every cell a key point
  const float scale = g.chance(0.5) ? 3.0f : g.scale();
  std::vector<float> offset = g.values(2LL * h * w, sp, scale), error = g.values(2LL * h * w, sp, scale);
  if (g.chance(0.3)) std::fill(offset.begin(), offset.end(), 0.0f);  // every key point a start point
  decode::GANetPublishedParams p;
  p.threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.root_threshold = g.value(0.1, 5.0f);
  p.cluster_distance = g.uniform(0.0, 20.0);
  p.min_points = g.uniform_int(0, 20);
  p.stride = g.uniform_int(1, 32);
  p.ratio_x = static_cast<float>(g.uniform(0.05, 4.0));
  p.ratio_y = static_cast<float>(g.uniform(0.05, 4.0));
  p.crop_top = static_cast<float>(g.uniform(0.0, 400.0));
  p.frame_width = f.map.frame_width;
  std::vector<unsigned char> ws(decode::ganet_published_workspace(h, w));
  Outputs o(f);
  timed("ganet_published", [&] {
    decode::ganet_published_item(prob.data(), offset.data(), error.data(), h, w, p, f.ys.data(),
                                 static_cast<int>(f.ys.size()), f.max_lanes, o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("ganet_published", f, o.xs, o.scores);
}

// The proposals, then the lanes of the kept ones from random expected columns (some outside the map, some
// not finite: the op passes softmax expectations, the core must not trust them), offsets and row ranges.
void fuzz_condlane_published(Gen& g) {
  Frame f = random_frame(g);
  const int h16 = g.uniform_int(1, 30), w16 = g.uniform_int(1, 60), h8 = g.uniform_int(1, 60),
            w8 = g.uniform_int(1, 120);
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.3);
  std::vector<float> prob = g.probabilities(static_cast<int64_t>(h16) * w16, sp);
  if (g.chance(0.2)) std::fill(prob.begin(), prob.end(), 0.9999f);  // flat: every cell a proposal
  decode::CondLanePublishedParams p;
  p.threshold = static_cast<float>(g.uniform(-0.1, 1.0));
  p.group_distance = g.uniform(0.0, 10.0);
  p.stride = static_cast<float>(g.uniform(0.5, 16.0));
  p.ratio_x = static_cast<float>(g.uniform(0.05, 4.0));
  p.ratio_y = static_cast<float>(g.uniform(0.05, 4.0));
  p.crop_top = static_cast<float>(g.uniform(0.0, 400.0));
  p.frame_width = f.map.frame_width;
  const int cells = h16 * w16;
  std::vector<int> seeds(static_cast<size_t>(cells)), kept(static_cast<size_t>(cells));
  std::vector<unsigned char> seed_ws(decode::condlane_seed_workspace(h16, w16));
  int n_kept = 0;
  timed("condlane_published seeds", [&] {
    decode::condlane_published_seeds(prob.data(), h16, w16, p, seeds.data(), kept.data(), &n_kept, seed_ws.data());
  });
  std::vector<int> kept_cells(static_cast<size_t>(n_kept));
  std::vector<float> kept_probs(static_cast<size_t>(n_kept));
  for (int i = 0; i < n_kept; ++i) {
    kept_cells[i] = seeds[kept[i]];
    if (kept_cells[i] < 0 || kept_cells[i] >= cells) SF_FAIL("condlane_published: kept cell %d outside", kept_cells[i]);
    kept_probs[i] = prob[kept_cells[i]];
  }
  std::vector<float> columns = g.values(static_cast<int64_t>(n_kept) * h8, sp, static_cast<float>(w8));
  std::vector<float> offsets = g.values(static_cast<int64_t>(n_kept) * h8 * w8, sp, g.scale());
  std::vector<float> range = g.values(static_cast<int64_t>(cells) * h8 * 2, sp, 2.0f);
  std::vector<unsigned char> ws(decode::condlane_lane_workspace(n_kept, h8));
  Outputs o(f);
  timed("condlane_published lanes", [&] {
    decode::condlane_published_lanes(columns.data(), offsets.data(), range.data(), kept_cells.data(),
                                     kept_probs.data(), n_kept, h8, w8, p, f.ys.data(), static_cast<int>(f.ys.size()),
                                     f.max_lanes, o.xs.data(), o.scores.data(), ws.data());
  });
  check_laneset("condlane_published", f, o.xs, o.scores);
}

std::vector<std::vector<culane::Point>> random_lanes(Gen& g, int max_lanes, int width, int height) {
  std::vector<std::vector<culane::Point>> lanes(static_cast<size_t>(g.uniform_int(0, max_lanes)));
  const double sp = g.chance(0.5) ? 0.0 : g.uniform(0.0, 0.2);
  for (auto& lane : lanes) {
    lane.resize(static_cast<size_t>(g.uniform_int(0, 40)));
    const float far = g.chance(0.2) ? g.scale() * 100.0f : 1.0f;
    for (auto& p : lane) {
      p.x = g.chance(sp) ? g.value(1.0, 0.0f) : static_cast<float>(g.uniform(-0.2, 1.2) * width) * far;
      p.y = g.chance(sp) ? g.value(1.0, 0.0f) : static_cast<float>(g.uniform(-0.2, 1.2) * height) * far;
    }
  }
  return lanes;
}

void fuzz_culane(Gen& g) {
  culane::MetricParams params;
  params.width = g.uniform_int(1, 1700);
  params.height = g.uniform_int(1, 600);
  params.lane_width = g.uniform_int(2, 60);
  params.matcher = g.chance(0.5) ? culane::Matcher::kOfficial : culane::Matcher::kExact;
  const int max_lanes = params.matcher == culane::Matcher::kExact ? 10 : 14;
  const auto gt = random_lanes(g, max_lanes, params.width, params.height);
  const auto pred = random_lanes(g, max_lanes, params.width, params.height);
  std::vector<culane::LaneView> gv, pv;
  for (const auto& l : gt) gv.push_back({l.data(), static_cast<int>(l.size())});
  for (const auto& l : pred) pv.push_back({l.data(), static_cast<int>(l.size())});
  std::vector<double> iou(gt.size() * pred.size() + 1);
  std::vector<int64_t> match(gt.size() + 1);
  timed("culane", [&] {
    culane::match_image(gv.data(), static_cast<int>(gv.size()), pv.data(), static_cast<int>(pv.size()), params,
                        iou.data(), match.data());
  });
  for (size_t i = 0; i < gt.size() * pred.size(); ++i)
    if (!(std::isnan(iou[i]) || (iou[i] >= 0.0 && iou[i] <= 1.0))) SF_FAIL("culane: IoU %g outside [0, 1]", iou[i]);
  std::vector<int> used(pred.size(), 0);
  for (size_t i = 0; i < gt.size(); ++i) {
    const int64_t m = match[i];
    if (m < -1 || m >= static_cast<int64_t>(pred.size())) SF_FAIL("culane: match %lld out of range", (long long)m);
    if (m >= 0 && used[static_cast<size_t>(m)]++) SF_FAIL("culane: prediction %lld matched twice", (long long)m);
  }
}

void fuzz_distortion(Gen& g) {
  const int images = g.uniform_int(0, 4), draws = g.uniform_int(1, 3), rows = g.uniform_int(1, 60);
  const int ref_lanes = g.uniform_int(0, 8), pert_lanes = g.uniform_int(0, 8);
  const double sp = g.uniform(0.0, 0.9);
  auto lane_values = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    const float scale = g.chance(0.2) ? 3.0e38f : 1000.0f;
    for (auto& x : v)
      x = g.chance(sp) ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(g.uniform(-0.5, 1.5)) * scale;
    return v;
  };
  const auto ref = lane_values(static_cast<int64_t>(images) * ref_lanes * rows);
  const auto pert = lane_values(static_cast<int64_t>(draws) * images * pert_lanes * rows);
  std::vector<float> ys(rows);
  for (auto& y : ys) y = static_cast<float>(g.uniform(0.0, 600.0));
  lanes::DistortionParams params;
  params.width = static_cast<float>(g.uniform(0.5, 60.0));
  params.penalty = static_cast<float>(g.uniform(0.0, 3.0));
  params.min_iou = static_cast<float>(g.uniform(0.01, 1.0));
  std::vector<float> out(static_cast<size_t>(draws) * images + 1);
  timed("distortion", [&] {
    lanes::distortion_scores(ref.data(), images, ref_lanes, pert.data(), pert_lanes, ys.data(), rows, params,
                             out.data(), 0, static_cast<int64_t>(draws) * images);
  });
  for (int64_t i = 0; i < static_cast<int64_t>(draws) * images; ++i)
    if (!(out[static_cast<size_t>(i)] >= 0.0f)) SF_FAIL("distortion: score %g is not a number >= 0", out[i]);
}

}  // namespace

int main() {
  const char* secs = std::getenv("SELFOCUS_FUZZ_SECONDS");
  const char* seed = std::getenv("SELFOCUS_FUZZ_SEED");
  const double budget = secs ? std::atof(secs) : 3.0;
  Gen g{std::mt19937_64(seed ? std::strtoull(seed, nullptr, 10) : 1)};
  void (*const cases[])(Gen&) = {fuzz_ganet, fuzz_laneatt, fuzz_bezier, fuzz_lstr, fuzz_condlane, fuzz_scnn, fuzz_ufld, fuzz_lstr_published, fuzz_bezier_published, fuzz_seg_published, fuzz_anchor_published, fuzz_ganet_published, fuzz_condlane_published, fuzz_culane, fuzz_distortion};
  const auto t0 = Clock::now();
  int64_t runs = 0;
  while (std::chrono::duration<double>(Clock::now() - t0).count() < budget && selfocus_test::failures() == 0) {
    for (auto* c : cases) c(g);
    ++runs;
  }
  std::printf("fuzz: %lld rounds of %zu cases in %.1f s\n", (long long)runs, sizeof(cases) / sizeof(cases[0]),
              std::chrono::duration<double>(Clock::now() - t0).count());
  return selfocus_test::failures() == 0 ? 0 : 1;
}
