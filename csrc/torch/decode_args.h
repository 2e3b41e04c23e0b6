// Argument checks and preparation of the batched lane decoders, shared by the CPU and CUDA implementations.
// Head outputs may carry a leading Monte-Carlo dimension K (K noisy copies of one head, the other heads
// shared); confidence outputs become probabilities here with ATen's kernels (the reference decoders' own),
// on the heads' device.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string>

#include "../core/lane_decoders.h"

namespace selfocus {
namespace glue {

struct BatchView {
  at::Tensor t;  // contiguous float32
  bool has_k;
  int64_t image_numel;
};

inline BatchView head_view(const char* op, const char* name, const at::Tensor& t, int64_t image_dims) {
  TORCH_CHECK(t.defined(), op, ": ", name, " must be a tensor, got None");
  TORCH_CHECK(t.is_floating_point(), op, ": ", name, " must be floating point, got ", t.scalar_type());
  TORCH_CHECK(t.dim() == image_dims + 1 || t.dim() == image_dims + 2, op, ": ", name, " must have ",
              image_dims + 1, " dims [B, ...] or ", image_dims + 2, " dims [K, B, ...], got ", t.sizes());
  at::Tensor c = t.detach().to(at::kFloat).contiguous();
  const bool has_k = c.dim() == image_dims + 2;
  int64_t n = 1;
  for (int64_t d = c.dim() - image_dims; d < c.dim(); ++d) n *= c.size(d);
  return {c, has_k, n};
}

struct Batch {
  int64_t K = 1, B = 0;
  bool any_k = false;
};

inline Batch batch_of(const char* op, std::initializer_list<const BatchView*> views) {
  Batch b;
  const BatchView* first = *views.begin();
  b.B = first->t.size(first->has_k ? 1 : 0);
  for (const BatchView* v : views) {
    TORCH_CHECK(v->t.device() == first->t.device(), op, ": all heads must be on one device, got ", v->t.device(),
                " and ", first->t.device());
    const int64_t bb = v->t.size(v->has_k ? 1 : 0);
    TORCH_CHECK(bb == b.B, op, ": all heads must describe the same batch, got ", bb, " and ", b.B);
    if (v->has_k) {
      TORCH_CHECK(!b.any_k || v->t.size(0) == b.K, op, ": Monte-Carlo dimensions differ: ", v->t.size(0), " vs ", b.K);
      b.K = v->t.size(0);
      b.any_k = true;
    }
  }
  return b;
}

// Item (k, b)'s slice of a head.
inline const float* image_ptr(const BatchView& v, int64_t k, int64_t b, int64_t B) {
  const int64_t index = v.has_k ? k * B + b : b;
  return v.t.data_ptr<float>() + index * v.image_numel;
}

// An integer argument as int, inside [lo, hi] (the decoders index with int).
inline int int_arg(const char* op, const char* name, int64_t v, int64_t lo, int64_t hi) {
  TORCH_CHECK(v >= lo && v <= hi, op, ": ", name, " must be in ", lo, "..", hi, ", got ", v);
  return static_cast<int>(v);
}

// Largest image side the decoders accept (input and frame sizes, strides): far beyond any camera, and small
// enough that products of two sizes stay inside int.
constexpr int64_t kMaxSide = 1 << 15;

// A map [.., h, w] the decoders can index with int.
inline void check_map_size(const char* op, const char* name, int64_t h, int64_t w) {
  TORCH_CHECK(h >= 1 && w >= 1, op, ": ", name, " must have a non-empty map, got ", h, " x ", w);
  TORCH_CHECK(h <= kMaxSide && w <= kMaxSide && h * w <= (int64_t{1} << 26), op, ": ", name, " map of ", h, " x ", w,
              " is larger than the decoders accept (sides up to ", kMaxSide, ", 2^26 cells)");
}

inline decode::InputMap input_map(const char* op, double sx, double sy, double crop_top, int64_t frame_width) {
  TORCH_CHECK(sx > 0 && sy > 0 && std::isfinite(sx) && std::isfinite(sy), op, ": sx and sy must be positive");
  TORCH_CHECK(std::isfinite(crop_top), op, ": crop_top must be finite");
  return {static_cast<float>(sx), static_cast<float>(sy), static_cast<float>(crop_top),
          int_arg(op, "frame_width", frame_width, 1, kMaxSide)};
}

// What every decoder call has after the checks: the batch, the frame mapping and the output rows.
struct DecodeCommon {
  Batch bt;
  decode::InputMap map;
  at::Tensor ys;  // float32 [rows], contiguous, on the CPU
  int rows = 0;
  int64_t max_lanes = 8;
};

// The heads and settings of each family's call, checked.
struct GANetCall : DecodeCommon {
  BatchView kpts_prob, pts_offset, int_offset;
  int h = 0, w = 0;  // grid size
  decode::GANetParams params;
};

struct LaneATTCall : DecodeCommon {
  BatchView fg_prob, reg;
  at::Tensor anchor_xs, row_ys;  // CPU
  int anchors = 0, offset_rows = 0;
  decode::LaneATTParams params;
};

struct BezierCall : DecodeCommon {
  BatchView exist_prob, curves;
  int queries = 0;
  decode::BezierParams params;
};

struct LSTRCall : DecodeCommon {
  BatchView lane_prob, curves;
  at::Tensor sample_ys;  // float32, CPU
  int queries = 0, n_rows = 0;
  decode::LSTRParams params;
};

struct CondLaneCall : DecodeCommon {
  BatchView proposal_prob, params, features, range_prob;
  int C = 0, h16 = 0, w16 = 0, h8 = 0, w8 = 0;
  decode::CondLaneParams params_;
};

struct SCNNCall : DecodeCommon {
  BatchView seg_prob, exist_prob;
  at::Tensor sample_rows;  // int32, CPU
  int channels = 0, h = 0, w = 0;
  decode::SCNNParams params;
};

inline void check_common(const char* op, DecodeCommon& call, const at::Tensor& ys, int64_t max_lanes) {
  TORCH_CHECK(ys.defined() && ys.dim() == 1 && ys.scalar_type() == at::kFloat, op, ": ys must be float32 [rows]");
  TORCH_CHECK(max_lanes >= 1 && max_lanes <= 64, op, ": max_lanes must be in 1..64, got ", max_lanes);
  TORCH_CHECK(ys.size(0) <= kMaxSide, op, ": ys must have at most ", kMaxSide, " rows, got ", ys.size(0));
  call.ys = ys.detach().cpu().contiguous();
  call.rows = static_cast<int>(ys.size(0));
  call.max_lanes = max_lanes;
}

inline GANetCall prepare_ganet(const at::Tensor& hm, const at::Tensor& pts, const at::Tensor& intr,
                                const at::Tensor& ys, double sx, double sy, double crop_top, int64_t frame_width,
                                int64_t max_lanes, double threshold, double seed_dist, double cluster_dist,
                                double assign_dist, int64_t stride) {
  const char* op = "decode_ganet";
  GANetCall call;
  TORCH_CHECK(hm.defined() && hm.is_floating_point(), op, ": kpts_hm must be a floating-point tensor");
  call.kpts_prob = head_view(op, "kpts_hm", at::sigmoid(hm.detach().to(at::kFloat)), 3);
  call.pts_offset = head_view(op, "pts_offset", pts, 3);
  call.int_offset = head_view(op, "int_offset", intr, 3);
  const at::Tensor &h = call.kpts_prob.t, &p = call.pts_offset.t, &q = call.int_offset.t;
  TORCH_CHECK(h.size(-3) == 1 && p.size(-3) == 2 && q.size(-3) == 2, op,
              ": expected kpts_hm [.., 1, h, w] and offsets [.., 2, h, w]");
  TORCH_CHECK(h.size(-1) == p.size(-1) && h.size(-2) == p.size(-2) && q.size(-1) == h.size(-1) &&
                  q.size(-2) == h.size(-2), op, ": heads must share the grid size");
  check_map_size(op, "kpts_hm", h.size(-2), h.size(-1));
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.kpts_prob, &call.pts_offset, &call.int_offset});
  call.map = input_map(op, sx, sy, crop_top, frame_width);
  call.h = static_cast<int>(h.size(-2));
  call.w = static_cast<int>(h.size(-1));
  call.params.threshold = static_cast<float>(threshold);
  call.params.seed_dist = static_cast<float>(seed_dist);
  call.params.cluster_dist = static_cast<float>(cluster_dist);
  call.params.assign_dist = static_cast<float>(assign_dist);
  call.params.stride = int_arg(op, "stride", stride, 1, kMaxSide);
  return call;
}

inline LaneATTCall prepare_laneatt(const at::Tensor& cls, const at::Tensor& reg, const at::Tensor& anchor_xs,
                                  const at::Tensor& row_ys, const at::Tensor& ys, double sx, double sy,
                                  double crop_top, int64_t frame_width, int64_t input_width, int64_t max_lanes,
                                  double threshold, double nms_dist, int64_t top_k) {
  const char* op = "decode_laneatt";
  LaneATTCall call;
  TORCH_CHECK(cls.defined() && cls.is_floating_point() && cls.dim() >= 2 && cls.size(-1) == 2, op,
              ": expected cls_logits [.., N, 2] logits, got ", cls.defined() ? cls.sizes() : at::IntArrayRef{});
  // foreground probability of the 2-class softmax as sigmoid(l1 - l0), the reference's expression and kernels
  const at::Tensor logits = cls.detach().to(at::kFloat);
  call.fg_prob = head_view(op, "cls_logits", at::sigmoid(logits.select(-1, 1) - logits.select(-1, 0)), 1);
  call.reg = head_view(op, "reg", reg, 2);
  const int64_t n = call.fg_prob.t.size(-1), rows = call.reg.t.size(-1) - 1;
  TORCH_CHECK(call.reg.t.size(-2) == n && rows >= 1, op, ": expected reg [.., N, 1 + R] with N = ", n);
  TORCH_CHECK(anchor_xs.defined() && anchor_xs.scalar_type() == at::kFloat && anchor_xs.dim() == 2 &&
                  anchor_xs.size(0) == n && anchor_xs.size(1) == rows, op,
              ": anchor_xs must be float32 [N, R] = [", n, ", ", rows, "]");
  TORCH_CHECK(row_ys.defined() && row_ys.scalar_type() == at::kFloat && row_ys.dim() == 1 && row_ys.size(0) == rows,
              op, ": row_ys must be float32 [R]");
  TORCH_CHECK(n <= (int64_t{1} << 16) && rows <= 4096, op, ": at most 65536 anchors of 4096 rows, got ", n,
              " of ", rows);
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.fg_prob, &call.reg});
  call.map = input_map(op, sx, sy, crop_top, frame_width);
  call.anchor_xs = anchor_xs.detach().cpu().contiguous();
  call.row_ys = row_ys.detach().cpu().contiguous();
  call.anchors = static_cast<int>(n);
  call.offset_rows = static_cast<int>(rows);
  call.params.threshold = static_cast<float>(threshold);
  call.params.nms_dist = static_cast<float>(nms_dist);
  call.params.top_k = int_arg(op, "top_k", top_k, 0, std::min<int64_t>(n, 1024));
  call.params.width = int_arg(op, "input_width", input_width, 1, kMaxSide);
  return call;
}

inline BezierCall prepare_bezier(const at::Tensor& logits, const at::Tensor& curves, const at::Tensor& ys, double sx,
                                 double sy, double crop_top, int64_t frame_width, int64_t input_width,
                                 int64_t input_height, int64_t max_lanes, double threshold, int64_t window,
                                 int64_t samples) {
  const char* op = "decode_bezier";
  BezierCall call;
  TORCH_CHECK(logits.defined() && logits.is_floating_point(), op, ": logits must be a floating-point tensor");
  call.exist_prob = head_view(op, "logits", at::sigmoid(logits.detach().to(at::kFloat)), 1);
  call.curves = head_view(op, "curves", curves, 3);
  const int64_t q = call.exist_prob.t.size(-1);
  TORCH_CHECK(call.curves.t.size(-3) == q && call.curves.t.size(-2) == 4 && call.curves.t.size(-1) == 2, op,
              ": expected logits [.., Q] and curves [.., Q, 4, 2]");
  TORCH_CHECK(window % 2 == 1, op, ": window must be odd, got ", window);
  TORCH_CHECK(q <= 4096, op, ": at most 4096 queries, got ", q);
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.exist_prob, &call.curves});
  call.map = input_map(op, sx, sy, crop_top, frame_width);
  call.queries = static_cast<int>(q);
  call.params.threshold = static_cast<float>(threshold);
  call.params.window = int_arg(op, "window", window, 1, 2 * q + 1);
  call.params.samples = int_arg(op, "samples", samples, 2, kMaxSide);
  call.params.width = int_arg(op, "input_width", input_width, 1, kMaxSide);
  call.params.height = int_arg(op, "input_height", input_height, 1, kMaxSide);
  return call;
}

inline LSTRCall prepare_lstr(const at::Tensor& logits, const at::Tensor& curves, const at::Tensor& sample_ys,
                             const at::Tensor& ys, double sx, double sy, double crop_top, int64_t frame_width,
                             int64_t input_width, int64_t input_height, int64_t max_lanes, double threshold,
                             int64_t max_keep) {
  const char* op = "decode_lstr";
  LSTRCall call;
  TORCH_CHECK(logits.defined() && logits.is_floating_point() && logits.dim() >= 2 && logits.size(-1) == 2, op,
              ": expected logits [.., Q, 2], got ", logits.defined() ? logits.sizes() : at::IntArrayRef{});
  // the lane column of the 2-class softmax as sigmoid(l1 - l0), the reference's expression and kernels
  const at::Tensor l = logits.detach().to(at::kFloat);
  call.lane_prob = head_view(op, "logits", at::sigmoid(l.select(-1, 1) - l.select(-1, 0)), 1);
  call.curves = head_view(op, "curves", curves, 2);
  const int64_t q = call.lane_prob.t.size(-1);
  TORCH_CHECK(call.curves.t.size(-2) == q && call.curves.t.size(-1) == 8, op,
              ": expected curves [.., Q, 8] with Q = ", q, ", got ", call.curves.t.sizes());
  TORCH_CHECK(q <= 4096, op, ": at most 4096 queries, got ", q);
  TORCH_CHECK(sample_ys.defined() && sample_ys.scalar_type() == at::kFloat && sample_ys.dim() == 1, op,
              ": sample_ys must be float32 [n]");
  TORCH_CHECK(sample_ys.size(0) <= 4096, op, ": at most 4096 sample rows, got ", sample_ys.size(0));
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.lane_prob, &call.curves});
  call.map = input_map(op, sx, sy, crop_top, frame_width);
  call.sample_ys = sample_ys.detach().cpu().contiguous();
  call.queries = static_cast<int>(q);
  call.n_rows = static_cast<int>(sample_ys.size(0));
  call.params.threshold = static_cast<float>(threshold);
  call.params.max_keep = int_arg(op, "max_keep", max_keep, 0, q);
  call.params.width = int_arg(op, "input_width", input_width, 1, kMaxSide);
  call.params.height = int_arg(op, "input_height", input_height, 1, kMaxSide);
  return call;
}

inline CondLaneCall prepare_condlane(const at::Tensor& proposal, const at::Tensor& params, const at::Tensor& features,
                                     const at::Tensor& range, const at::Tensor& ys, double sx, double sy,
                                     double crop_top, int64_t frame_width, int64_t max_lanes, double threshold,
                                     double range_threshold, double merge_dist, int64_t max_seeds, int64_t stride) {
  const char* op = "decode_condlane";
  CondLaneCall call;
  TORCH_CHECK(proposal.defined() && proposal.is_floating_point(), op, ": proposal must be a floating-point tensor");
  TORCH_CHECK(range.defined() && range.is_floating_point(), op, ": range must be a floating-point tensor");
  call.proposal_prob = head_view(op, "proposal", at::sigmoid(proposal.detach().to(at::kFloat)), 3);
  call.params = head_view(op, "params", params, 3);
  call.features = head_view(op, "features", features, 3);
  call.range_prob = head_view(op, "range", at::sigmoid(range.detach().to(at::kFloat)), 3);
  const at::Tensor &hm = call.proposal_prob.t, &pm = call.params.t, &ft = call.features.t, &rg = call.range_prob.t;
  const int64_t h16 = hm.size(-2), w16 = hm.size(-1), C = ft.size(-3), h8 = ft.size(-2), w8 = ft.size(-1);
  TORCH_CHECK(hm.size(-3) == 1, op, ": expected proposal [.., 1, h, w], got ", proposal.sizes());
  check_map_size(op, "proposal", h16, w16);
  check_map_size(op, "features", h8, w8);
  TORCH_CHECK(C >= 1 && C <= 1024, op, ": features must have 1..1024 channels, got ", C);
  TORCH_CHECK(pm.size(-3) == 2 * (C + 3) && pm.size(-2) == h16 && pm.size(-1) == w16, op,
              ": expected params [.., 2 (C + 3) = ", 2 * (C + 3), ", ", h16, ", ", w16, "] for ", C,
              " feature channels and the proposal grid, got ", params.sizes());
  TORCH_CHECK(rg.size(-3) == h8 && rg.size(-2) == h16 && rg.size(-1) == w16, op, ": expected range [.., ", h8, ", ",
              h16, ", ", w16, "] (a probability per feature row and proposal cell), got ", range.sizes());
  TORCH_CHECK(std::isfinite(merge_dist) && merge_dist >= 0, op, ": merge_dist must be finite and >= 0, got ", merge_dist);
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.proposal_prob, &call.params, &call.features, &call.range_prob});
  call.map = input_map(op, sx, sy, crop_top, frame_width);
  call.C = static_cast<int>(C);
  call.h16 = static_cast<int>(h16);
  call.w16 = static_cast<int>(w16);
  call.h8 = static_cast<int>(h8);
  call.w8 = static_cast<int>(w8);
  call.params_.threshold = static_cast<float>(threshold);
  call.params_.range_threshold = static_cast<float>(range_threshold);
  call.params_.merge_dist = static_cast<float>(merge_dist);
  call.params_.max_seeds = int_arg(op, "max_seeds", max_seeds, 1, 256);
  call.params_.stride = int_arg(op, "stride", stride, 1, kMaxSide);
  return call;
}

inline SCNNCall prepare_scnn(const at::Tensor& seg, const at::Tensor& exist, const at::Tensor& sample_rows,
                               const at::Tensor& ys, double sx, double sy, double crop_top, int64_t frame_width,
                               int64_t input_width, int64_t input_height, int64_t max_lanes, double exist_threshold,
                               double point_threshold, int64_t blur) {
  const char* op = "decode_scnn";
  SCNNCall call;
  TORCH_CHECK(seg.defined() && seg.is_floating_point() && (seg.dim() == 4 || seg.dim() == 5), op,
              ": out must be floating point [B, C, h, w] or [K, B, C, h, w]");
  const int in_w = int_arg(op, "input_width", input_width, 1, kMaxSide);
  const int in_h = int_arg(op, "input_height", input_height, 1, kMaxSide);
  TORCH_CHECK(int64_t{in_w} * in_h <= (int64_t{1} << 26), op, ": input of ", in_w, " x ", in_h,
              " is larger than the decoder accepts (2^26 pixels)");
  check_map_size(op, "out", seg.size(-2), seg.size(-1));
  TORCH_CHECK(seg.size(-2) * in_w <= (int64_t{1} << 26), op, ": out's ", seg.size(-2), " rows upsampled to ", in_w,
              " columns are more than the decoder accepts (2^26 values)");
  TORCH_CHECK(seg.size(-3) >= 1 && seg.size(-3) <= 1024, op, ": out must have 1..1024 channels, got ", seg.size(-3));
  // softmax over channels with the reference's kernel (the upsampling happens per image, row by row)
  call.seg_prob = head_view(op, "out", at::softmax(seg.detach().to(at::kFloat), seg.dim() - 3), 3);
  TORCH_CHECK(exist.defined() && exist.is_floating_point(), op, ": lane must be a floating-point tensor");
  call.exist_prob = head_view(op, "lane", at::sigmoid(exist.detach().to(at::kFloat)), 1);
  const int64_t channels = call.seg_prob.t.size(-3);
  TORCH_CHECK(call.exist_prob.t.size(-1) == channels - 1, op, ": lane must have one logit per lane channel (", channels - 1, ")");
  TORCH_CHECK(sample_rows.defined() && sample_rows.scalar_type() == at::kInt && sample_rows.dim() == 1, op,
              ": sample_rows must be int32 [n]");
  const at::Tensor rows = sample_rows.detach().cpu().contiguous();
  TORCH_CHECK(rows.size(0) <= 4 * int64_t{in_h}, op, ": sample_rows has ", rows.size(0), " rows, more than 4 x the input height");
  const int* rp = rows.data_ptr<int>();
  for (int64_t i = 0; i < rows.size(0); ++i)
    TORCH_CHECK(rp[i] >= 0 && rp[i] < input_height, op, ": sample row ", rp[i], " outside the input height ", input_height);
  TORCH_CHECK(blur % 2 == 1, op, ": blur must be odd, got ", blur);
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.seg_prob, &call.exist_prob});
  call.map = input_map(op, sx, sy, crop_top, frame_width);
  call.sample_rows = rows;
  call.channels = static_cast<int>(channels);
  call.h = static_cast<int>(call.seg_prob.t.size(-2));
  call.w = static_cast<int>(call.seg_prob.t.size(-1));
  call.params.exist_threshold = static_cast<float>(exist_threshold);
  call.params.point_threshold = static_cast<float>(point_threshold);
  call.params.blur = int_arg(op, "blur", blur, 1, 1023);
  call.params.width = in_w;
  call.params.height = in_h;
  return call;
}

// [K, B, L, R] and [K, B, L] outputs, without K when no input had it.
struct UFLDCall : DecodeCommon {
  BatchView prob, loc, exist;
  int cells = 0, rows_in = 0, lanes = 0;
  decode::UFLDParams params;
};

// Points come out in frame pixels: the map to the frame is the identity.
inline UFLDCall prepare_ufld(const at::Tensor& prob, const at::Tensor& loc, const at::Tensor& exist,
                             const at::Tensor& ys, int64_t frame_width, int64_t frame_height, int64_t input_width,
                             int64_t max_lanes, int64_t row_gap) {
  const char* op = "decode_ufld";
  UFLDCall call;
  call.prob = head_view(op, "prob", prob, 3);
  call.loc = head_view(op, "loc", loc, 3);
  call.exist = head_view(op, "exist", exist, 2);
  const at::Tensor &p = call.prob.t, &l = call.loc.t, &e = call.exist.t;
  TORCH_CHECK(p.size(-1) == l.size(-1) && p.size(-2) == l.size(-2) && p.size(-3) == l.size(-3), op,
              ": prob must have loc's [cells, rows, lanes] shape, got ", p.sizes(), " and ", l.sizes());
  TORCH_CHECK(e.size(-1) == l.size(-1) && e.size(-2) == l.size(-2), op,
              ": exist must be [.., rows, lanes] as loc, got ", e.sizes(), " and ", l.sizes());
  TORCH_CHECK(l.size(-3) >= 2 && l.size(-3) <= 4096, op, ": loc must have 2..4096 cells, got ", l.size(-3));
  TORCH_CHECK(l.size(-2) >= 1 && l.size(-2) <= 1024 && l.size(-1) >= 1 && l.size(-1) <= 64, op,
              ": loc must have 1..1024 rows and 1..64 lanes, got ", l.size(-2), " and ", l.size(-1));
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.prob, &call.loc, &call.exist});
  call.map = input_map(op, 1.0, 1.0, 0.0, frame_width);
  call.cells = static_cast<int>(l.size(-3));
  call.rows_in = static_cast<int>(l.size(-2));
  call.lanes = static_cast<int>(l.size(-1));
  call.params.input_width = int_arg(op, "input_width", input_width, 2, kMaxSide);
  call.params.frame_height = int_arg(op, "frame_height", frame_height, 1, kMaxSide);
  call.params.row_gap = int_arg(op, "row_gap", row_gap, 0, kMaxSide);
  return call;
}

// The published curve families' calls: points come out in frame pixels (the map is the identity).
struct LSTRPublishedCall : DecodeCommon {
  BatchView prob, curves;
  int queries = 0;
  decode::LSTRPublishedParams params;
};

struct BezierPublishedCall : DecodeCommon {
  BatchView prob, curves;
  int queries = 0;
  decode::BezierPublishedParams params;
};

inline LSTRPublishedCall prepare_lstr_published(const at::Tensor& logits, const at::Tensor& curves,
                                                const at::Tensor& ys, int64_t frame_width, int64_t frame_height,
                                                int64_t max_lanes, double threshold, int64_t gap, int64_t points) {
  const char* op = "decode_lstr_published";
  LSTRPublishedCall call;
  TORCH_CHECK(logits.defined() && logits.is_floating_point() && logits.dim() >= 1 && logits.size(-1) == 2, op,
              ": logits must be floating point [.., Q, 2]");
  // the lane probability as the reference computes it: softmax over the two classes, class 1
  call.prob = head_view(op, "logits", at::softmax(logits.detach().to(at::kFloat), -1).select(-1, 1), 1);
  call.curves = head_view(op, "curves", curves, 2);
  const int64_t q = call.prob.t.size(-1);
  TORCH_CHECK(call.curves.t.size(-2) == q && call.curves.t.size(-1) == 8, op,
              ": expected logits [.., Q, 2] and curves [.., Q, 8], got ", logits.sizes(), " and ", curves.sizes());
  TORCH_CHECK(q <= 4096, op, ": at most 4096 queries, got ", q);
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.prob, &call.curves});
  call.map = input_map(op, 1.0, 1.0, 0.0, frame_width);
  call.queries = static_cast<int>(q);
  call.params.threshold = static_cast<float>(threshold);
  call.params.max_lanes = static_cast<int>(max_lanes);
  call.params.gap = int_arg(op, "gap", gap, 0, kMaxSide);
  call.params.points = int_arg(op, "points", points, 0, 4096);
  call.params.frame_width = call.map.frame_width;
  call.params.frame_height = int_arg(op, "frame_height", frame_height, 1, kMaxSide);
  return call;
}

inline BezierPublishedCall prepare_bezier_published(const at::Tensor& logits, const at::Tensor& curves,
                                                    const at::Tensor& ys, int64_t frame_width, int64_t frame_height,
                                                    int64_t max_lanes, double threshold, int64_t window,
                                                    int64_t samples) {
  const char* op = "decode_bezier_published";
  BezierPublishedCall call;
  TORCH_CHECK(logits.defined() && logits.is_floating_point(), op, ": logits must be a floating-point tensor");
  call.prob = head_view(op, "logits", at::sigmoid(logits.detach().to(at::kFloat)), 1);
  call.curves = head_view(op, "curves", curves, 3);
  const int64_t q = call.prob.t.size(-1);
  TORCH_CHECK(call.curves.t.size(-3) == q && call.curves.t.size(-2) == 4 && call.curves.t.size(-1) == 2, op,
              ": expected logits [.., Q] and curves [.., Q, 4, 2], got ", logits.sizes(), " and ", curves.sizes());
  TORCH_CHECK(q <= 4096, op, ": at most 4096 queries, got ", q);
  TORCH_CHECK(window == 0 || window % 2 == 1, op, ": window must be 0 (off) or odd, got ", window);
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.prob, &call.curves});
  call.map = input_map(op, 1.0, 1.0, 0.0, frame_width);
  call.queries = static_cast<int>(q);
  call.params.threshold = static_cast<float>(threshold);
  call.params.window = int_arg(op, "window", window, 0, 2 * q + 1);
  call.params.max_lanes = static_cast<int>(max_lanes);
  call.params.samples = int_arg(op, "samples", samples, 2, 4096);
  call.params.frame_width = call.map.frame_width;
  call.params.frame_height = int_arg(op, "frame_height", frame_height, 1, kMaxSide);
  return call;
}

struct SegPublishedCall : DecodeCommon {
  BatchView seg, exist_prob;
  at::Tensor sample_rows;  // int32, CPU
  at::Tensor frame_rows;   // float64, CPU
  int channels = 0;
  bool align_corners = true;
  decode::SegPublishedParams params;
};

// The maps are resized and softmaxed per chunk of items by the op itself (ATen's kernels on the heads'
// device), so only the low-resolution heads are checked and viewed here.
inline SegPublishedCall prepare_seg_published(const at::Tensor& seg, const at::Tensor& lane,
                                              const at::Tensor& sample_rows, const at::Tensor& frame_rows,
                                              const at::Tensor& ys, int64_t frame_width, int64_t input_width,
                                              int64_t input_height, int64_t max_lanes, double exist_threshold,
                                              double point_threshold, int64_t blur, bool align_corners,
                                              bool official) {
  const char* op = "decode_segmentation_published";
  SegPublishedCall call;
  call.seg = head_view(op, "out", seg, 3);
  check_map_size(op, "out", call.seg.t.size(-2), call.seg.t.size(-1));
  const int64_t channels = call.seg.t.size(-3);
  TORCH_CHECK(channels >= 2 && channels <= 64, op, ": out must have 2..64 channels (background + lanes), got ", channels);
  TORCH_CHECK(lane.defined() && lane.is_floating_point(), op, ": lane must be a floating-point tensor");
  call.exist_prob = head_view(op, "lane", at::sigmoid(lane.detach().to(at::kFloat)), 1);
  TORCH_CHECK(call.exist_prob.t.size(-1) == channels - 1, op, ": lane must have one logit per lane channel (",
              channels - 1, "), got ", call.exist_prob.t.size(-1));
  const int in_w = int_arg(op, "input_width", input_width, 1, 4096);
  const int in_h = int_arg(op, "input_height", input_height, 1, 4096);
  TORCH_CHECK(sample_rows.defined() && sample_rows.scalar_type() == at::kInt && sample_rows.dim() == 1, op,
              ": sample_rows must be int32 [n]");
  TORCH_CHECK(frame_rows.defined() && frame_rows.scalar_type() == at::kDouble && frame_rows.dim() == 1 &&
                  frame_rows.size(0) == sample_rows.size(0), op,
              ": frame_rows must be float64 [n], one frame row per sample row");
  TORCH_CHECK(sample_rows.size(0) <= 4096, op, ": at most 4096 sample rows, got ", sample_rows.size(0));
  call.sample_rows = sample_rows.detach().cpu().contiguous();
  call.frame_rows = frame_rows.detach().cpu().contiguous();
  const int* rp = call.sample_rows.data_ptr<int>();
  for (int64_t i = 0; i < call.sample_rows.size(0); ++i)
    TORCH_CHECK(rp[i] < in_h, op, ": sample row ", rp[i], " outside the input height ", in_h);
  TORCH_CHECK(blur >= 1 && blur % 2 == 1 && blur <= 255, op, ": blur must be odd, 1..255, got ", blur);
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.seg, &call.exist_prob});
  call.map = input_map(op, 1.0, 1.0, 0.0, frame_width);
  call.channels = static_cast<int>(channels);
  call.align_corners = align_corners;
  call.params.exist_threshold = static_cast<float>(exist_threshold);
  call.params.point_threshold = static_cast<float>(point_threshold);
  call.params.blur = static_cast<int>(blur);
  call.params.max_lanes = static_cast<int>(max_lanes);
  call.params.official = official;
  call.params.width = in_w;
  call.params.height = in_h;
  call.params.frame_width = call.map.frame_width;
  return call;
}

// Items [first, first + n) of the low-resolution maps (item = k * B + b), resized to the input and
// softmaxed over the channels as the reference does: [n, C, height, width], contiguous.
inline at::Tensor seg_published_maps(const SegPublishedCall& c, int64_t first, int64_t n) {
  const at::Tensor& t = c.seg.t;
  const int64_t B = c.bt.B;
  at::Tensor idx = at::arange(first, first + n, t.options().dtype(at::kLong));
  at::Tensor low = c.seg.has_k ? t.reshape({-1, t.size(-3), t.size(-2), t.size(-1)}).index_select(0, idx)
                               : t.index_select(0, idx.remainder(B));
  return at::upsample_bilinear2d(low, {c.params.height, c.params.width}, c.align_corners).softmax(1).contiguous();
}

// Items per chunk so that the resized maps of a chunk stay near 256 MB.
inline int64_t seg_published_chunk(const SegPublishedCall& c) {
  const int64_t per_item = static_cast<int64_t>(c.channels) * c.params.height * c.params.width * 4;
  return std::max<int64_t>(1, (int64_t{256} << 20) / per_item);
}

struct AnchorPublishedCall : DecodeCommon {
  BatchView prob, lanes;
  at::Tensor prior_ys;   // float32 [points], CPU
  at::Tensor sample_ys;  // float64 [n], CPU
  int n = 0, points = 0;
  decode::AnchorPublishedParams params;
};

// CLRNet (lanes [.., P, 4 + points]) and LaneATT (proposals [.., A, 2 + points]): `extra` is 4 or 2.
inline AnchorPublishedCall prepare_anchor_published(const char* op, const at::Tensor& cls, const at::Tensor& lanes,
                                                    const char* lanes_name, int64_t extra, const at::Tensor& prior_ys,
                                                    const at::Tensor& sample_ys, const at::Tensor& ys,
                                                    int64_t input_width, int64_t frame_width, int64_t frame_height,
                                                    double crop_top, int64_t max_lanes, double threshold,
                                                    double nms_threshold, int64_t top_k, bool official) {
  AnchorPublishedCall call;
  TORCH_CHECK(cls.defined() && cls.is_floating_point() && cls.dim() >= 1 && cls.size(-1) == 2, op,
              ": cls must be floating point [.., N, 2]");
  // the class-1 probability with the reference's kernel: softmax over the two classes
  call.prob = head_view(op, "cls", at::softmax(cls.detach().to(at::kFloat), -1).select(-1, 1), 1);
  call.lanes = head_view(op, lanes_name, lanes, 2);
  const int64_t n = call.prob.t.size(-1);
  TORCH_CHECK(call.lanes.t.size(-2) == n && call.lanes.t.size(-1) > extra + 1, op, ": expected cls [.., N, 2] and ",
              lanes_name, " [.., N, ", extra, " + points], got ", cls.sizes(), " and ", lanes.sizes());
  TORCH_CHECK(n <= 8192, op, ": at most 8192 proposals, got ", n);
  const int64_t points = call.lanes.t.size(-1) - extra;
  TORCH_CHECK(points <= 1024, op, ": at most 1024 points per proposal, got ", points);
  TORCH_CHECK(prior_ys.defined() && prior_ys.scalar_type() == at::kFloat && prior_ys.dim() == 1 &&
                  prior_ys.size(0) == points, op, ": prior_ys must be float32 [", points, "] (one per point)");
  TORCH_CHECK(sample_ys.defined() && sample_ys.scalar_type() == at::kDouble && sample_ys.dim() == 1 &&
                  sample_ys.size(0) <= 8192, op, ": sample_ys must be float64 [n], n <= 8192");
  call.prior_ys = prior_ys.detach().cpu().contiguous();
  call.sample_ys = sample_ys.detach().cpu().contiguous();
  const double* sp = call.sample_ys.data_ptr<double>();
  for (int64_t i = 1; i < call.sample_ys.size(0); ++i)
    TORCH_CHECK(sp[i] > sp[i - 1], op, ": sample_ys must be increasing");
  TORCH_CHECK(std::isfinite(crop_top), op, ": crop_top must be finite");
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.prob, &call.lanes});
  call.map = input_map(op, 1.0, 1.0, 0.0, frame_width);
  call.n = static_cast<int>(n);
  call.points = static_cast<int>(points);
  call.params.threshold = static_cast<float>(threshold);
  call.params.nms_threshold = static_cast<float>(nms_threshold);
  call.params.top_k = int_arg(op, "top_k", top_k, 0, 64);
  call.params.input_width = int_arg(op, "input_width", input_width, 2, kMaxSide);
  call.params.frame_width = call.map.frame_width;
  call.params.frame_height = int_arg(op, "frame_height", frame_height, 1, kMaxSide);
  call.params.crop_top = static_cast<float>(crop_top);
  call.params.official = official;
  return call;
}

// The published keypoint families: points come out in frame pixels (the map is the identity); the writer's
// input-to-frame ratios in float32, as its numpy arithmetic takes them.
struct KeypointFrame {
  float ratio_x = 1.0f, ratio_y = 1.0f, crop_top = 0.0f;
  int frame_width = 1;
};

inline KeypointFrame keypoint_frame(const char* op, int64_t input_width, int64_t input_height, int64_t frame_width,
                                    int64_t frame_height, double crop_top) {
  const int in_w = int_arg(op, "input_width", input_width, 1, kMaxSide);
  const int in_h = int_arg(op, "input_height", input_height, 1, kMaxSide);
  const int fw = int_arg(op, "frame_width", frame_width, 1, kMaxSide);
  const int fh = int_arg(op, "frame_height", frame_height, 1, kMaxSide);
  TORCH_CHECK(std::isfinite(crop_top) && crop_top >= 0 && crop_top < fh, op,
              ": crop_top must be in [0, frame_height), got ", crop_top);
  KeypointFrame f;
  f.ratio_x = static_cast<float>(static_cast<double>(fw) / in_w);
  f.ratio_y = static_cast<float>((static_cast<double>(fh) - crop_top) / in_h);
  f.crop_top = static_cast<float>(crop_top);
  f.frame_width = fw;
  return f;
}

struct GANetPublishedCall : DecodeCommon {
  BatchView prob, offset, error;
  int h = 0, w = 0;
  decode::GANetPublishedParams params;
};

inline GANetPublishedCall prepare_ganet_published(const at::Tensor& hm, const at::Tensor& pts, const at::Tensor& intr,
                                                  const at::Tensor& ys, int64_t input_width, int64_t input_height,
                                                  int64_t frame_width, int64_t frame_height, double crop_top,
                                                  int64_t max_lanes, double threshold, double root_threshold,
                                                  double cluster_distance, int64_t min_points) {
  const char* op = "decode_ganet_published";
  GANetPublishedCall call;
  TORCH_CHECK(hm.defined() && hm.is_floating_point(), op, ": kpts_hm must be a floating-point tensor");
  // the key-point probability with the reference's kernels: the sigmoid clamped to [1e-4, 1 - 1e-4]
  call.prob = head_view(op, "kpts_hm", at::clamp(at::sigmoid(hm.detach().to(at::kFloat)), 1e-4, 1 - 1e-4), 3);
  call.offset = head_view(op, "pts_offset", pts, 3);
  call.error = head_view(op, "int_offset", intr, 3);
  const at::Tensor &h = call.prob.t, &p = call.offset.t, &q = call.error.t;
  TORCH_CHECK(h.size(-3) == 1 && p.size(-3) == 2 && q.size(-3) == 2, op,
              ": expected kpts_hm [.., 1, h, w] and offsets [.., 2, h, w], got ", hm.sizes(), ", ", pts.sizes(),
              " and ", intr.sizes());
  TORCH_CHECK(h.size(-1) == p.size(-1) && h.size(-2) == p.size(-2) && q.size(-1) == h.size(-1) &&
                  q.size(-2) == h.size(-2), op, ": heads must share the grid size, got ", hm.sizes(), ", ",
              pts.sizes(), " and ", intr.sizes());
  check_map_size(op, "kpts_hm", h.size(-2), h.size(-1));
  TORCH_CHECK(std::isfinite(cluster_distance) && cluster_distance >= 0, op,
              ": cluster_distance must be finite and >= 0, got ", cluster_distance);
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.prob, &call.offset, &call.error});
  const KeypointFrame f = keypoint_frame(op, input_width, input_height, frame_width, frame_height, crop_top);
  call.map = input_map(op, 1.0, 1.0, 0.0, frame_width);
  call.h = static_cast<int>(h.size(-2));
  call.w = static_cast<int>(h.size(-1));
  TORCH_CHECK(input_width >= call.w, op, ": input_width (", input_width, ") must be at least the map width ", call.w);
  call.params.threshold = static_cast<float>(threshold);
  call.params.root_threshold = static_cast<float>(root_threshold);
  call.params.cluster_distance = cluster_distance;
  call.params.min_points = int_arg(op, "min_points", min_points, 0, 1 << 26);
  call.params.stride = static_cast<int>(input_width / call.w);  // the implementation's W // w
  call.params.ratio_x = f.ratio_x;
  call.params.ratio_y = f.ratio_y;
  call.params.crop_top = f.crop_top;
  call.params.frame_width = f.frame_width;
  return call;
}

struct CondLanePublishedCall : DecodeCommon {
  BatchView prob, params, features, range;
  int C = 0, h16 = 0, w16 = 0, h8 = 0, w8 = 0;
  decode::CondLanePublishedParams settings;
};

// The dynamic convolutions run in the op (ATen's kernels, the implementation's calls), so the heads stay
// as given apart from the proposal probability.
inline CondLanePublishedCall prepare_condlane_published(const at::Tensor& hm, const at::Tensor& params,
                                                        const at::Tensor& features, const at::Tensor& range,
                                                        const at::Tensor& ys, int64_t input_width,
                                                        int64_t input_height, int64_t frame_width,
                                                        int64_t frame_height, double crop_top, int64_t max_lanes,
                                                        double threshold, double group_distance) {
  const char* op = "decode_condlane_published";
  CondLanePublishedCall call;
  TORCH_CHECK(hm.defined() && hm.is_floating_point(), op, ": hm must be a floating-point tensor");
  call.prob = head_view(op, "hm", at::clamp(at::sigmoid(hm.detach().to(at::kFloat)), 1e-4, 1 - 1e-4), 3);
  call.params = head_view(op, "params", params, 3);
  call.features = head_view(op, "features", features, 3);
  call.range = head_view(op, "range", range, 3);
  const at::Tensor &pb = call.prob.t, &pm = call.params.t, &ft = call.features.t, &rg = call.range.t;
  const int64_t h16 = pb.size(-2), w16 = pb.size(-1), C = ft.size(-3), h8 = ft.size(-2), w8 = ft.size(-1);
  TORCH_CHECK(pb.size(-3) == 1, op, ": expected hm [.., 1, h, w], got ", hm.sizes());
  check_map_size(op, "hm", h16, w16);
  check_map_size(op, "features", h8, w8);
  TORCH_CHECK(C >= 1 && C <= 1024, op, ": features must have 1..1024 channels, got ", C);
  TORCH_CHECK(pm.size(-3) == 2 * (C + 3) && pm.size(-2) == h16 && pm.size(-1) == w16, op,
              ": expected params [.., 2 (C + 3) = ", 2 * (C + 3), ", ", h16, ", ", w16, "] for ", C,
              " feature channels and the proposal grid, got ", params.sizes());
  TORCH_CHECK(rg.size(-3) == h16 * w16 && rg.size(-2) == h8 && rg.size(-1) == 2, op, ": expected range [.., ",
              h16 * w16, ", ", h8, ", 2] (row-range logits per proposal cell and feature row), got ", range.sizes());
  TORCH_CHECK(std::isfinite(group_distance) && group_distance >= 0, op,
              ": group_distance must be finite and >= 0, got ", group_distance);
  check_common(op, call, ys, max_lanes);
  call.bt = batch_of(op, {&call.prob, &call.params, &call.features, &call.range});
  const KeypointFrame f = keypoint_frame(op, input_width, input_height, frame_width, frame_height, crop_top);
  call.map = input_map(op, 1.0, 1.0, 0.0, frame_width);
  call.C = static_cast<int>(C);
  call.h16 = static_cast<int>(h16);
  call.w16 = static_cast<int>(w16);
  call.h8 = static_cast<int>(h8);
  call.w8 = static_cast<int>(w8);
  call.settings.threshold = static_cast<float>(threshold);
  call.settings.group_distance = group_distance;
  call.settings.stride = static_cast<float>(static_cast<double>(input_width) / w8);  // the implementation's W / w
  call.settings.ratio_x = f.ratio_x;
  call.settings.ratio_y = f.ratio_y;
  call.settings.crop_top = f.crop_top;
  call.settings.frame_width = f.frame_width;
  return call;
}

inline std::tuple<at::Tensor, at::Tensor> finish(const DecodeCommon& call, at::Tensor xs, at::Tensor sc) {
  if (!call.bt.any_k) return {xs.squeeze(0), sc.squeeze(0)};
  return {xs, sc};
}

}  // namespace glue
}  // namespace selfocus
