// Batched lane decoders: schemas and CPU implementations. Every (draw, image) item runs the per-image
// decoder of csrc/core/decoders/ (the code the CUDA kernels run), in parallel over items. Inputs may
// carry a leading Monte-Carlo dimension K (K noisy copies of one head with the other heads shared): the
// output is then [K, B, ...].
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <torch/library.h>
#include <algorithm>
#include <tuple>
#include <vector>

#include "../core/lane_decoders.h"
#include "decode_args.h"

// Wider vector units for SCNN's map loops and CondLane's dynamic convs on the host (elementwise: the results do not change).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(SELFOCUS_NO_CLONES)
#define SF_DECODE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), flatten))
#else
#define SF_DECODE_CLONES
#endif

namespace selfocus {
namespace glue {
namespace {

// Decodes every (draw, image) item: `item(k, b, xs, scores, workspace)` writes the item's LaneSet row, with
// a workspace of `workspace_bytes` per thread.
template <typename Item>
std::tuple<at::Tensor, at::Tensor> run_cpu(const DecodeCommon& call, const at::TensorOptions& options,
                                           size_t workspace_bytes, Item&& item) {
  const int64_t rows = call.rows, L = call.max_lanes, B = call.bt.B;
  at::Tensor xs = at::empty({call.bt.K, B, L, rows}, options);
  at::Tensor sc = at::empty({call.bt.K, B, L}, options);
  at::parallel_for(0, call.bt.K * B, 1, [&](int64_t s, int64_t e) {
    std::vector<unsigned char> ws(workspace_bytes);
    for (int64_t i = s; i < e; ++i)
      item(i / B, i % B, xs.data_ptr<float>() + i * L * rows, sc.data_ptr<float>() + i * L, ws.data());
  });
  return finish(call, xs, sc);
}

SF_DECODE_CLONES
void scnn_item_host(const float* prob, const float* exist, int channels, int h, int w, const int* sample_rows,
                    int n_rows, const decode::SCNNParams& p, const decode::InputMap& map, const float* ys, int rows,
                    int max_lanes, float* xs, float* scores, unsigned char* workspace) {
  decode::scnn_item(prob, exist, channels, h, w, sample_rows, n_rows, p, map, ys, rows, max_lanes, xs, scores,
                    workspace);
}

SF_DECODE_CLONES
void condlane_item_host(const float* proposal, const float* params, const float* features, const float* range, int C,
                        int h16, int w16, int h8, int w8, const decode::CondLaneParams& p, const decode::InputMap& map,
                        const float* ys, int rows, int max_lanes, float* xs, float* scores, unsigned char* workspace) {
  decode::condlane_item(proposal, params, features, range, C, h16, w16, h8, w8, p, map, ys, rows, max_lanes, xs,
                        scores, workspace);
}

std::tuple<at::Tensor, at::Tensor> decode_ganet_cpu(const at::Tensor& hm, const at::Tensor& pts, const at::Tensor& intr,
                                                    const at::Tensor& ys, double sx, double sy, double crop_top,
                                                    int64_t frame_width, int64_t max_lanes, double threshold,
                                                    double seed_dist, double cluster_dist, double assign_dist,
                                                    int64_t stride) {
  const GANetCall c = prepare_ganet(hm, pts, intr, ys, sx, sy, crop_top, frame_width, max_lanes, threshold, seed_dist,
                                    cluster_dist, assign_dist, stride);
  const int64_t B = c.bt.B;
  return run_cpu(c, c.kpts_prob.t.options(), decode::ganet_workspace(c.h, c.w),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   decode::ganet_item(image_ptr(c.kpts_prob, k, b, B), image_ptr(c.pts_offset, k, b, B),
                                      image_ptr(c.int_offset, k, b, B), c.h, c.w, c.params, c.map,
                                      c.ys.data_ptr<float>(), c.rows, static_cast<int>(c.max_lanes), x, s, ws);
                 });
}

std::tuple<at::Tensor, at::Tensor> decode_laneatt_cpu(const at::Tensor& cls, const at::Tensor& reg,
                                                      const at::Tensor& anchor_xs, const at::Tensor& row_ys,
                                                      const at::Tensor& ys, double sx, double sy, double crop_top,
                                                      int64_t frame_width, int64_t input_width, int64_t max_lanes,
                                                      double threshold, double nms_dist, int64_t top_k) {
  const LaneATTCall c = prepare_laneatt(cls, reg, anchor_xs, row_ys, ys, sx, sy, crop_top, frame_width, input_width,
                                        max_lanes, threshold, nms_dist, top_k);
  const int64_t B = c.bt.B;
  return run_cpu(c, c.fg_prob.t.options(), decode::laneatt_workspace(c.anchors, c.offset_rows, c.params.top_k),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   decode::laneatt_item(image_ptr(c.fg_prob, k, b, B), image_ptr(c.reg, k, b, B),
                                        c.anchor_xs.data_ptr<float>(), c.row_ys.data_ptr<float>(), c.anchors,
                                        c.offset_rows, c.params, c.map, c.ys.data_ptr<float>(), c.rows,
                                        static_cast<int>(c.max_lanes), x, s, ws);
                 });
}

std::tuple<at::Tensor, at::Tensor> decode_bezier_cpu(const at::Tensor& logits, const at::Tensor& curves,
                                                     const at::Tensor& ys, double sx, double sy, double crop_top,
                                                     int64_t frame_width, int64_t input_width, int64_t input_height,
                                                     int64_t max_lanes, double threshold, int64_t window,
                                                     int64_t samples) {
  const BezierCall c = prepare_bezier(logits, curves, ys, sx, sy, crop_top, frame_width, input_width, input_height,
                                      max_lanes, threshold, window, samples);
  const int64_t B = c.bt.B;
  return run_cpu(c, c.exist_prob.t.options(), decode::bezier_workspace(c.queries, c.params.samples),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   decode::bezier_item(image_ptr(c.exist_prob, k, b, B), image_ptr(c.curves, k, b, B), c.queries,
                                       c.params, c.map, c.ys.data_ptr<float>(), c.rows, static_cast<int>(c.max_lanes),
                                       x, s, ws);
                 });
}

std::tuple<at::Tensor, at::Tensor> decode_lstr_cpu(const at::Tensor& logits, const at::Tensor& curves,
                                                   const at::Tensor& sample_ys, const at::Tensor& ys, double sx,
                                                   double sy, double crop_top, int64_t frame_width,
                                                   int64_t input_width, int64_t input_height, int64_t max_lanes,
                                                   double threshold, int64_t max_keep) {
  const LSTRCall c = prepare_lstr(logits, curves, sample_ys, ys, sx, sy, crop_top, frame_width, input_width,
                                  input_height, max_lanes, threshold, max_keep);
  const int64_t B = c.bt.B;
  return run_cpu(c, c.lane_prob.t.options(), decode::lstr_workspace(c.queries, c.n_rows),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   decode::lstr_item(image_ptr(c.lane_prob, k, b, B), image_ptr(c.curves, k, b, B), c.queries,
                                     c.sample_ys.data_ptr<float>(), c.n_rows, c.params, c.map, c.ys.data_ptr<float>(),
                                     c.rows, static_cast<int>(c.max_lanes), x, s, ws);
                 });
}

std::tuple<at::Tensor, at::Tensor> decode_condlane_cpu(const at::Tensor& proposal, const at::Tensor& params,
                                                       const at::Tensor& features, const at::Tensor& range,
                                                       const at::Tensor& ys, double sx, double sy, double crop_top,
                                                       int64_t frame_width, int64_t max_lanes, double threshold,
                                                       double range_threshold, double merge_dist, int64_t max_seeds,
                                                       int64_t stride) {
  const CondLaneCall c = prepare_condlane(proposal, params, features, range, ys, sx, sy, crop_top, frame_width,
                                          max_lanes, threshold, range_threshold, merge_dist, max_seeds, stride);
  const int64_t B = c.bt.B;
  return run_cpu(c, c.proposal_prob.t.options(),
                 decode::condlane_workspace(c.h16, c.w16, c.params_.max_seeds, c.h8, c.w8, c.C),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   condlane_item_host(image_ptr(c.proposal_prob, k, b, B), image_ptr(c.params, k, b, B),
                                      image_ptr(c.features, k, b, B), image_ptr(c.range_prob, k, b, B), c.C, c.h16,
                                      c.w16, c.h8, c.w8, c.params_, c.map, c.ys.data_ptr<float>(), c.rows,
                                      static_cast<int>(c.max_lanes), x, s, ws);
                 });
}

std::tuple<at::Tensor, at::Tensor> decode_scnn_cpu(const at::Tensor& seg, const at::Tensor& exist,
                                                   const at::Tensor& sample_rows, const at::Tensor& ys, double sx,
                                                   double sy, double crop_top, int64_t frame_width,
                                                   int64_t input_width, int64_t input_height, int64_t max_lanes,
                                                   double exist_threshold, double point_threshold, int64_t blur) {
  const SCNNCall c = prepare_scnn(seg, exist, sample_rows, ys, sx, sy, crop_top, frame_width, input_width,
                                  input_height, max_lanes, exist_threshold, point_threshold, blur);
  const int64_t B = c.bt.B;
  const int n_rows = static_cast<int>(c.sample_rows.size(0));
  return run_cpu(c, c.seg_prob.t.options(), decode::scnn_workspace(c.channels, c.h, n_rows, c.params),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   scnn_item_host(image_ptr(c.seg_prob, k, b, B), image_ptr(c.exist_prob, k, b, B), c.channels, c.h,
                                  c.w, c.sample_rows.data_ptr<int>(), n_rows, c.params, c.map, c.ys.data_ptr<float>(),
                                  c.rows, static_cast<int>(c.max_lanes), x, s, ws);
                 });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> decode_ufld_cpu(const at::Tensor& prob, const at::Tensor& loc,
                                                   const at::Tensor& exist, const at::Tensor& ys, int64_t frame_width,
                                                   int64_t frame_height, int64_t input_width, int64_t max_lanes,
                                                   int64_t row_gap) {
  const UFLDCall c = prepare_ufld(prob, loc, exist, ys, frame_width, frame_height, input_width, max_lanes, row_gap);
  const int64_t B = c.bt.B;
  return run_cpu(c, c.loc.t.options(), decode::ufld_workspace(c.rows_in, c.lanes),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   decode::ufld_item(image_ptr(c.prob, k, b, B), image_ptr(c.loc, k, b, B), image_ptr(c.exist, k, b, B),
                                     c.cells, c.rows_in, c.lanes, c.params, c.map, c.ys.data_ptr<float>(), c.rows,
                                     static_cast<int>(c.max_lanes), x, s, ws);
                 });
}

std::tuple<at::Tensor, at::Tensor> decode_lstr_published_cpu(const at::Tensor& logits, const at::Tensor& curves,
                                                             const at::Tensor& ys, int64_t frame_width,
                                                             int64_t frame_height, int64_t max_lanes, double threshold,
                                                             int64_t gap, int64_t points) {
  const LSTRPublishedCall c =
      prepare_lstr_published(logits, curves, ys, frame_width, frame_height, max_lanes, threshold, gap, points);
  const int64_t B = c.bt.B;
  return run_cpu(c, c.prob.t.options(), decode::lstr_published_workspace(c.queries, c.params.points),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   decode::lstr_published_item(image_ptr(c.prob, k, b, B), image_ptr(c.curves, k, b, B), c.queries,
                                               c.params, c.ys.data_ptr<float>(), c.rows, static_cast<int>(c.max_lanes),
                                               x, s, ws);
                 });
}

std::tuple<at::Tensor, at::Tensor> decode_bezier_published_cpu(const at::Tensor& logits, const at::Tensor& curves,
                                                               const at::Tensor& ys, int64_t frame_width,
                                                               int64_t frame_height, int64_t max_lanes,
                                                               double threshold, int64_t window, int64_t samples) {
  const BezierPublishedCall c =
      prepare_bezier_published(logits, curves, ys, frame_width, frame_height, max_lanes, threshold, window, samples);
  const int64_t B = c.bt.B;
  return run_cpu(c, c.prob.t.options(), decode::bezier_published_workspace(c.queries, c.params.samples),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   decode::bezier_published_item(image_ptr(c.prob, k, b, B), image_ptr(c.curves, k, b, B), c.queries,
                                                 c.params, c.ys.data_ptr<float>(), c.rows,
                                                 static_cast<int>(c.max_lanes), x, s, ws);
                 });
}

std::tuple<at::Tensor, at::Tensor> decode_segmentation_published_cpu(
    const at::Tensor& out, const at::Tensor& lane, const at::Tensor& sample_rows, const at::Tensor& frame_rows,
    const at::Tensor& ys, int64_t frame_width, int64_t input_width, int64_t input_height, int64_t max_lanes,
    double exist_threshold, double point_threshold, int64_t blur, bool align_corners, bool official) {
  const SegPublishedCall c =
      prepare_seg_published(out, lane, sample_rows, frame_rows, ys, frame_width, input_width, input_height, max_lanes,
                            exist_threshold, point_threshold, blur, align_corners, official);
  const int64_t rows = c.rows, L = c.max_lanes, B = c.bt.B, items = c.bt.K * B;
  at::Tensor xs = at::empty({c.bt.K, B, L, rows}, c.seg.t.options());
  at::Tensor sc = at::empty({c.bt.K, B, L}, c.seg.t.options());
  const int n_rows = static_cast<int>(c.sample_rows.size(0));
  const size_t ws_bytes = decode::seg_published_workspace(c.channels, n_rows, c.params);
  const int64_t plane = static_cast<int64_t>(c.channels) * c.params.height * c.params.width;
  const int64_t chunk = seg_published_chunk(c);
  for (int64_t first = 0; first < items; first += chunk) {
    const int64_t n = std::min(chunk, items - first);
    const at::Tensor maps = seg_published_maps(c, first, n);
    at::parallel_for(0, n, 1, [&](int64_t s, int64_t e) {
      std::vector<unsigned char> ws(ws_bytes);
      for (int64_t j = s; j < e; ++j) {
        const int64_t i = first + j;
        decode::seg_published_item(maps.data_ptr<float>() + j * plane, image_ptr(c.exist_prob, i / B, i % B, B),
                                   c.channels, c.sample_rows.data_ptr<int>(), c.frame_rows.data_ptr<double>(), n_rows,
                                   c.params, c.ys.data_ptr<float>(), c.rows, static_cast<int>(L),
                                   xs.data_ptr<float>() + i * L * rows, sc.data_ptr<float>() + i * L, ws.data());
      }
    });
  }
  return finish(c, xs, sc);
}

// CLRNet's and LaneATT's items share their arguments; `laneatt` picks the item.
std::tuple<at::Tensor, at::Tensor> run_anchor_published_cpu(const AnchorPublishedCall& c, bool laneatt) {
  const int64_t B = c.bt.B;
  const int n_samples = static_cast<int>(c.sample_ys.size(0));
  return run_cpu(c, c.prob.t.options(), decode::anchor_published_workspace(c.n, c.points, n_samples, c.params.top_k),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   auto* item = laneatt ? &decode::laneatt_published_item : &decode::clrnet_published_item;
                   item(image_ptr(c.prob, k, b, B), image_ptr(c.lanes, k, b, B), c.n, c.points,
                        c.prior_ys.data_ptr<float>(), c.sample_ys.data_ptr<double>(), n_samples, c.params,
                        c.ys.data_ptr<float>(), c.rows, static_cast<int>(c.max_lanes), x, s, ws);
                 });
}

std::tuple<at::Tensor, at::Tensor> decode_clrnet_published_cpu(
    const at::Tensor& cls, const at::Tensor& lanes, const at::Tensor& prior_ys, const at::Tensor& sample_ys,
    const at::Tensor& ys, int64_t input_width, int64_t frame_width, int64_t frame_height, double crop_top,
    int64_t max_lanes, double threshold, double nms_threshold, int64_t top_k) {
  return run_anchor_published_cpu(
      prepare_anchor_published("decode_clrnet_published", cls, lanes, "lanes", 4, prior_ys, sample_ys, ys, input_width,
                               frame_width, frame_height, crop_top, max_lanes, threshold, nms_threshold, top_k, false),
      false);
}

std::tuple<at::Tensor, at::Tensor> decode_laneatt_published_cpu(
    const at::Tensor& cls, const at::Tensor& proposals, const at::Tensor& prior_ys, const at::Tensor& sample_ys,
    const at::Tensor& ys, int64_t input_width, int64_t frame_width, int64_t frame_height, int64_t max_lanes,
    double threshold, double nms_threshold, int64_t top_k, bool official) {
  return run_anchor_published_cpu(
      prepare_anchor_published("decode_laneatt_published", cls, proposals, "proposals", 2, prior_ys, sample_ys, ys,
                               input_width, frame_width, frame_height, 0.0, max_lanes, threshold, nms_threshold,
                               top_k, official),
      true);
}

std::tuple<at::Tensor, at::Tensor> decode_ganet_published_cpu(
    const at::Tensor& kpts_hm, const at::Tensor& pts_offset, const at::Tensor& int_offset, const at::Tensor& ys,
    int64_t input_width, int64_t input_height, int64_t frame_width, int64_t frame_height, double crop_top,
    int64_t max_lanes, double threshold, double root_threshold, double cluster_distance, int64_t min_points) {
  const GANetPublishedCall c =
      prepare_ganet_published(kpts_hm, pts_offset, int_offset, ys, input_width, input_height, frame_width,
                              frame_height, crop_top, max_lanes, threshold, root_threshold, cluster_distance,
                              min_points);
  const int64_t B = c.bt.B;
  return run_cpu(c, c.prob.t.options(), decode::ganet_published_workspace(c.h, c.w),
                 [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
                   decode::ganet_published_item(image_ptr(c.prob, k, b, B), image_ptr(c.offset, k, b, B),
                                                image_ptr(c.error, k, b, B), c.h, c.w, c.params,
                                                c.ys.data_ptr<float>(), c.rows, static_cast<int>(c.max_lanes), x, s,
                                                ws);
                 });
}

namespace {

// Item `index` (k * B + b, or b for a head without K) of a head as [1, ...].
at::Tensor item_of(const BatchView& v, int64_t k, int64_t b, int64_t B) {
  const int64_t index = v.has_k ? k * B + b : b;
  return v.t.reshape({-1, v.t.size(-3), v.t.size(-2), v.t.size(-1)}).narrow(0, index, 1);
}

// CondLaneNet's dynamic convolutions as the implementation runs them: every proposal's parameters as one
// group of a grouped 1x1 convolution over (x / w, y / w, features) repeated per group (oneDNN's grouped
// kernel). A group's output does not depend on the other groups, so only the proposals that are kept run,
// and the copies of one image that share its features and parameters run their kept proposals once; an
// image with a single proposal takes the ungrouped kernel, as in the implementation (groups = 1), and a
// single kept proposal of an image with more is run as two groups (the grouped kernel).
// tests/test_published_keypoint_decoders.py holds the results to the implementation's call over all proposals.
class DynamicConvs {
 public:
  DynamicConvs(const CondLanePublishedCall& c) : c_(c), D_(c.C + 3) {
    const at::TensorOptions f32 = c.features.t.options();
    const std::vector<at::Tensor> grid = at::meshgrid({at::arange(c.h8, f32), at::arange(c.w8, f32)}, "ij");
    loc_ = at::stack({grid[1], grid[0]}).unsqueeze(0) / c.w8;
    columns_of_ = at::arange(c.w8, f32);
  }

  // (expected columns [g, h8], offsets [g, h8, w8]) of the proposals at `cells` (g of them) of item (k, b);
  // `grouped`: whether the implementation ran this image's proposals through the grouped kernel.
  std::pair<at::Tensor, at::Tensor> run(int64_t k, int64_t b, const std::vector<int>& cells, bool grouped) {
    const int64_t B = c_.bt.B, g = static_cast<int64_t>(cells.size());
    const int64_t groups = grouped && g == 1 ? 2 : g;
    std::vector<int64_t> rows(static_cast<size_t>(groups));
    for (int64_t j = 0; j < groups; ++j) rows[j] = cells[static_cast<size_t>(j % g)];
    const at::Tensor idx = at::tensor(rows, at::kLong);
    const at::Tensor p = item_of(c_.params, k, b, B)[0].flatten(1).t().index_select(0, idx);
    const at::Tensor inputs = repeated(at::cat({loc_, item_of(c_.features, k, b, B)}, 1), groups);
    const at::Tensor masks = conv(inputs, p.narrow(1, 0, D_), groups).narrow(0, 0, g);
    const at::Tensor offsets = conv(inputs, p.narrow(1, D_, D_), groups).narrow(0, 0, g).contiguous();
    return {(at::softmax(masks, -1) * columns_of_).sum(-1).contiguous(), offsets};
  }

 private:
  static constexpr double kMaskBias = 2.19;  // subtracted from both convolutions' biases, as published

  // [1, C + 2, h, w] repeated `groups` times along the channels, into a buffer kept across calls (a fresh
  // allocation of that size costs more in page faults than the convolution).
  at::Tensor repeated(const at::Tensor& inputs, int64_t groups) {
    const int64_t ch = inputs.size(1) * groups;
    if (!buffer_.defined() || buffer_.size(1) < ch)
      buffer_ = at::empty({1, std::max<int64_t>(ch, 2 * inputs.size(1)), c_.h8, c_.w8}, inputs.options());
    at::Tensor x = buffer_.narrow(1, 0, ch);
    x.view({1, groups, inputs.size(1), c_.h8, c_.w8}).copy_(inputs.unsqueeze(1).expand({1, groups, -1, -1, -1}));
    return x;
  }

  static at::Tensor conv(const at::Tensor& x, const at::Tensor& p, int64_t groups) {
    const int64_t d = p.size(1);
    const at::Tensor weight = p.narrow(1, 0, d - 1).reshape({groups, d - 1, 1, 1});
    const at::Tensor bias = p.select(1, d - 1) - kMaskBias;
    const int64_t one[2] = {1, 1}, zero[2] = {0, 0};
    return at::conv2d(x, weight, bias, at::IntArrayRef(one), at::IntArrayRef(zero), at::IntArrayRef(one),
                      groups)[0];
  }

  const CondLanePublishedCall& c_;
  const int64_t D_;
  at::Tensor loc_, columns_of_, buffer_;
};

// One item's proposals: the seeds' count, the kept proposals' cells and probabilities.
struct Proposals {
  int n = 0;
  std::vector<int> cells;
  std::vector<float> probs;
};

}  // namespace

// CondLaneNet: the proposals here, the dynamic convolutions, softmax and expectation with ATen's kernels
// (DynamicConvs), then the rows and points here. Items in order (the ATen calls parallelise themselves).
std::tuple<at::Tensor, at::Tensor> decode_condlane_published_cpu(
    const at::Tensor& hm, const at::Tensor& params, const at::Tensor& features, const at::Tensor& range,
    const at::Tensor& ys, int64_t input_width, int64_t input_height, int64_t frame_width, int64_t frame_height,
    double crop_top, int64_t max_lanes, double threshold, double group_distance) {
  const CondLanePublishedCall c =
      prepare_condlane_published(hm, params, features, range, ys, input_width, input_height, frame_width,
                                 frame_height, crop_top, max_lanes, threshold, group_distance);
  const int64_t B = c.bt.B, K = c.bt.K, L = c.max_lanes, rows = c.rows, n_cells = int64_t{c.h16} * c.w16;
  at::Tensor xs = at::empty({K, B, L, rows}, c.prob.t.options());
  at::Tensor sc = at::empty({K, B, L}, c.prob.t.options());
  std::vector<unsigned char> seed_ws(decode::condlane_seed_workspace(c.h16, c.w16));
  std::vector<int> seeds(n_cells), kept(n_cells);
  std::vector<unsigned char> lane_ws;
  DynamicConvs convs(c);
  // Copies of an image whose features and parameters are shared (the Monte-Carlo noise on another head)
  // run the union of their kept proposals once.
  const bool shared = !c.params.has_k && !c.features.has_k;
  std::vector<Proposals> props(static_cast<size_t>(shared ? K : 1));
  std::vector<int> slot(n_cells);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t k0 = 0; k0 < K; k0 += static_cast<int64_t>(props.size())) {
      const int64_t nk = static_cast<int64_t>(props.size());
      std::vector<int> grouped_union;  // the kept cells of this image's grouped copies, first seen first
      std::fill(slot.begin(), slot.end(), -1);
      for (int64_t j = 0; j < nk; ++j) {
        const float* prob = image_ptr(c.prob, k0 + j, b, B);
        Proposals& pr = props[static_cast<size_t>(j)];
        int n_kept = 0;
        pr.n = decode::condlane_published_seeds(prob, c.h16, c.w16, c.settings, seeds.data(), kept.data(), &n_kept,
                                                seed_ws.data());
        pr.cells.resize(static_cast<size_t>(n_kept));
        pr.probs.resize(static_cast<size_t>(n_kept));
        for (int q = 0; q < n_kept; ++q) {
          pr.cells[q] = seeds[kept[q]];
          pr.probs[q] = prob[seeds[kept[q]]];
          if (pr.n > 1 && slot[pr.cells[q]] < 0) {
            slot[pr.cells[q]] = static_cast<int>(grouped_union.size());
            grouped_union.push_back(pr.cells[q]);
          }
        }
      }
      at::Tensor union_columns, union_offsets;
      if (!grouped_union.empty()) std::tie(union_columns, union_offsets) = convs.run(k0, b, grouped_union, true);
      for (int64_t j = 0; j < nk; ++j) {
        const int64_t k = k0 + j, i = k * B + b;
        const Proposals& pr = props[static_cast<size_t>(j)];
        const int n_kept = static_cast<int>(pr.cells.size());
        at::Tensor columns, offsets;
        if (n_kept > 0 && pr.n == 1) {
          std::tie(columns, offsets) = convs.run(k, b, pr.cells, false);
        } else if (n_kept > 0) {
          std::vector<int64_t> at_rows(pr.cells.size());
          for (size_t q = 0; q < pr.cells.size(); ++q) at_rows[q] = slot[pr.cells[q]];
          const at::Tensor pick = at::tensor(at_rows, at::kLong);
          columns = union_columns.index_select(0, pick).contiguous();
          offsets = union_offsets.index_select(0, pick).contiguous();
        }
        lane_ws.resize(decode::condlane_lane_workspace(n_kept, c.h8));
        decode::condlane_published_lanes(n_kept ? columns.data_ptr<float>() : nullptr,
                                         n_kept ? offsets.data_ptr<float>() : nullptr, image_ptr(c.range, k, b, B),
                                         pr.cells.data(), pr.probs.data(), n_kept, c.h8, c.w8, c.settings,
                                         c.ys.data_ptr<float>(), c.rows, static_cast<int>(L),
                                         xs.data_ptr<float>() + i * L * rows, sc.data_ptr<float>() + i * L,
                                         lane_ws.data());
      }
    }
  }
  return finish(c, xs, sc);
}

TORCH_LIBRARY_FRAGMENT(selfocus, m) {
  m.def(
      "decode_ganet_published(Tensor kpts_hm, Tensor pts_offset, Tensor int_offset, Tensor ys, int input_width, "
      "int input_height, int frame_width, int frame_height, float crop_top, int max_lanes=16, float threshold=0.4, "
      "float root_threshold=1.0, float cluster_distance=5.0, int min_points=10) -> (Tensor, Tensor)");
  m.def(
      "decode_condlane_published(Tensor hm, Tensor params, Tensor features, Tensor range, Tensor ys, "
      "int input_width, int input_height, int frame_width, int frame_height, float crop_top, int max_lanes=16, "
      "float threshold=0.5, float group_distance=4.0) -> (Tensor, Tensor)");
  m.def(
      "decode_clrnet_published(Tensor cls, Tensor lanes, Tensor prior_ys, Tensor sample_ys, Tensor ys, "
      "int input_width, int frame_width, int frame_height, float crop_top, int max_lanes=4, float threshold=0.4, "
      "float nms_threshold=50.0, int top_k=4) -> (Tensor, Tensor)");
  m.def(
      "decode_laneatt_published(Tensor cls, Tensor proposals, Tensor prior_ys, Tensor sample_ys, Tensor ys, "
      "int input_width, int frame_width, int frame_height, int max_lanes=4, float threshold=0.5, "
      "float nms_threshold=50.0, int top_k=4, bool official=False) -> (Tensor, Tensor)");
  m.def(
      "decode_segmentation_published(Tensor out, Tensor lane, Tensor sample_rows, Tensor frame_rows, Tensor ys, "
      "int frame_width, int input_width, int input_height, int max_lanes=4, float exist_threshold=0.5, "
      "float point_threshold=0.3, int blur=9, bool align_corners=True, bool official=False) -> (Tensor, Tensor)");
  m.def(
      "decode_lstr_published(Tensor logits, Tensor curves, Tensor ys, int frame_width, int frame_height, "
      "int max_lanes=4, float threshold=0.95, int gap=20, int points=18) -> (Tensor, Tensor)");
  m.def(
      "decode_bezier_published(Tensor logits, Tensor curves, Tensor ys, int frame_width, int frame_height, "
      "int max_lanes=4, float threshold=0.95, int window=9, int samples=50) -> (Tensor, Tensor)");
  m.def(
      "decode_ufld(Tensor prob, Tensor loc, Tensor exist, Tensor ys, int frame_width, int frame_height, "
      "int input_width, int max_lanes=4, int row_gap=20) -> (Tensor, Tensor)");
  m.def(
      "decode_ganet(Tensor kpts_hm, Tensor pts_offset, Tensor int_offset, Tensor ys, float sx, float sy, "
      "float crop_top, int frame_width, int max_lanes=8, float threshold=0.4, float seed_dist=1.0, "
      "float cluster_dist=5.0, float assign_dist=4.0, int stride=8) -> (Tensor, Tensor)");
  m.def(
      "decode_laneatt(Tensor cls_logits, Tensor reg, Tensor anchor_xs, Tensor row_ys, Tensor ys, float sx, "
      "float sy, float crop_top, int frame_width, int input_width, int max_lanes=8, float threshold=0.5, "
      "float nms_dist=12.0, int top_k=4) -> (Tensor, Tensor)");
  m.def(
      "decode_bezier(Tensor logits, Tensor curves, Tensor ys, float sx, float sy, float crop_top, int frame_width, "
      "int input_width, int input_height, int max_lanes=8, float threshold=0.5, int window=9, int samples=50) "
      "-> (Tensor, Tensor)");
  m.def(
      "decode_lstr(Tensor logits, Tensor curves, Tensor sample_ys, Tensor ys, float sx, float sy, float crop_top, "
      "int frame_width, int input_width, int input_height, int max_lanes=8, float threshold=0.95, int max_keep=4) "
      "-> (Tensor, Tensor)");
  m.def(
      "decode_condlane(Tensor proposal, Tensor params, Tensor features, Tensor range, Tensor ys, float sx, float sy, "
      "float crop_top, int frame_width, int max_lanes=8, float threshold=0.5, float range_threshold=0.5, "
      "float merge_dist=2.0, int max_seeds=16, int stride=8) -> (Tensor, Tensor)");
  m.def(
      "decode_scnn(Tensor out, Tensor lane, Tensor sample_rows, Tensor ys, float sx, float sy, float crop_top, "
      "int frame_width, int input_width, int input_height, int max_lanes=8, float exist_threshold=0.5, "
      "float point_threshold=0.3, int blur=9) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(selfocus, CPU, m) {
  m.impl("decode_ganet", &decode_ganet_cpu);
  m.impl("decode_laneatt", &decode_laneatt_cpu);
  m.impl("decode_bezier", &decode_bezier_cpu);
  m.impl("decode_lstr", &decode_lstr_cpu);
  m.impl("decode_condlane", &decode_condlane_cpu);
  m.impl("decode_scnn", &decode_scnn_cpu);
  m.impl("decode_ufld", &decode_ufld_cpu);
  m.impl("decode_lstr_published", &decode_lstr_published_cpu);
  m.impl("decode_bezier_published", &decode_bezier_published_cpu);
  m.impl("decode_segmentation_published", &decode_segmentation_published_cpu);
  m.impl("decode_clrnet_published", &decode_clrnet_published_cpu);
  m.impl("decode_laneatt_published", &decode_laneatt_published_cpu);
  m.impl("decode_ganet_published", &decode_ganet_published_cpu);
  m.impl("decode_condlane_published", &decode_condlane_published_cpu);
}

}  // namespace glue
}  // namespace selfocus
