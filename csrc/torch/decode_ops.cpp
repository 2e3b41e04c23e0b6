// Batched lane decoders (CPU): schemas and implementations over csrc/core/lane_decode. Inputs may carry a
// leading Monte-Carlo dimension K (K noisy copies of one head with the other heads shared): the output is
// then [K, B, ...].
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <torch/library.h>

#include "../core/lane_decode.h"

namespace selfocus {
namespace glue {
namespace {

struct BatchView {
  at::Tensor t;  // contiguous float32
  bool has_k;
  int64_t image_numel;
};

// A head output of per-image shape `image_dims` ([B, ...] or [K, B, ...]).
BatchView head_view(const char* op, const char* name, const at::Tensor& t, int64_t image_dims) {
  TORCH_CHECK(t.device().is_cpu(), op, ": ", name, " must be a CPU tensor (decoding runs on the CPU here)");
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

Batch batch_of(const char* op, std::initializer_list<const BatchView*> views) {
  Batch b;
  for (const BatchView* v : views) {
    const int64_t bb = v->t.size(v->has_k ? 1 : 0);
    if (b.B == 0) b.B = bb;
    TORCH_CHECK(bb == b.B, op, ": all heads must describe the same batch, got ", bb, " and ", b.B);
    if (v->has_k) {
      TORCH_CHECK(!b.any_k || v->t.size(0) == b.K, op, ": Monte-Carlo dimensions differ: ", v->t.size(0), " vs ", b.K);
      b.K = v->t.size(0);
      b.any_k = true;
    }
  }
  return b;
}

const float* image_ptr(const BatchView& v, int64_t k, int64_t b, int64_t B) {
  const int64_t index = v.has_k ? k * B + b : b;
  return v.t.data_ptr<float>() + index * v.image_numel;
}

decode::InputMap input_map(const char* op, double sx, double sy, double crop_top, int64_t frame_width) {
  TORCH_CHECK(sx > 0 && sy > 0 && std::isfinite(sx) && std::isfinite(sy), op, ": sx and sy must be positive");
  TORCH_CHECK(frame_width > 0, op, ": frame_width must be positive");
  return {static_cast<float>(sx), static_cast<float>(sy), static_cast<float>(crop_top), static_cast<int>(frame_width)};
}

std::tuple<at::Tensor, at::Tensor> decode_ganet_cpu(const at::Tensor& hm, const at::Tensor& pts, const at::Tensor& intr,
                                                    const at::Tensor& ys, double sx, double sy, double crop_top,
                                                    int64_t frame_width, int64_t max_lanes, double threshold,
                                                    double seed_dist, double cluster_dist, double assign_dist,
                                                    int64_t stride) {
  const char* op = "decode_ganet";
  const BatchView h = head_view(op, "kpts_hm", hm.is_floating_point() ? at::sigmoid(hm.detach().to(at::kFloat)) : hm, 3);
  const BatchView p = head_view(op, "pts_offset", pts, 3);
  const BatchView q = head_view(op, "int_offset", intr, 3);
  TORCH_CHECK(h.t.size(-3) == 1 && p.t.size(-3) == 2 && q.t.size(-3) == 2, op,
              ": expected kpts_hm [.., 1, h, w] and offsets [.., 2, h, w]");
  TORCH_CHECK(h.t.size(-1) == p.t.size(-1) && h.t.size(-2) == p.t.size(-2) && q.t.sizes().slice(q.t.dim() - 2) ==
                  h.t.sizes().slice(h.t.dim() - 2), op, ": heads must share the grid size");
  TORCH_CHECK(ys.dim() == 1 && ys.scalar_type() == at::kFloat, op, ": ys must be float32 [rows]");
  TORCH_CHECK(max_lanes >= 1 && max_lanes <= 64, op, ": max_lanes must be in 1..64");
  const Batch bt = batch_of(op, {&h, &p, &q});
  const decode::InputMap map = input_map(op, sx, sy, crop_top, frame_width);
  const int gh = static_cast<int>(h.t.size(-2)), gw = static_cast<int>(h.t.size(-1));
  const int rows = static_cast<int>(ys.size(0));
  const at::Tensor yc = ys.contiguous();
  at::Tensor xs = at::empty({bt.K, bt.B, max_lanes, rows}, h.t.options());
  at::Tensor sc = at::empty({bt.K, bt.B, max_lanes}, h.t.options());
  decode::GANetParams gp;
  gp.threshold = static_cast<float>(threshold);
  gp.seed_dist = static_cast<float>(seed_dist);
  gp.cluster_dist = static_cast<float>(cluster_dist);
  gp.assign_dist = static_cast<float>(assign_dist);
  gp.stride = static_cast<int>(stride);
  at::parallel_for(0, bt.K * bt.B, 1, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      const int64_t k = i / bt.B, b = i % bt.B;
      const auto lanes = decode::ganet_image(image_ptr(h, k, b, bt.B), image_ptr(p, k, b, bt.B),
                                             image_ptr(q, k, b, bt.B), gh, gw, gp);
      decode::emit_lanes(lanes, map, yc.data_ptr<float>(), rows, static_cast<int>(max_lanes),
                         xs.data_ptr<float>() + i * max_lanes * rows, sc.data_ptr<float>() + i * max_lanes);
    }
  });
  if (!bt.any_k) return {xs.squeeze(0), sc.squeeze(0)};
  return {xs, sc};
}

// Runs `image_fn(i, k, b)` -> lanes for every (draw, image) and writes the LaneSet tensors.
template <typename Fn>
std::tuple<at::Tensor, at::Tensor> run_decoder(const Batch& bt, const at::Tensor& ys, const decode::InputMap& map,
                                               int64_t max_lanes, const at::TensorOptions& opts, Fn&& image_fn) {
  TORCH_CHECK(ys.dim() == 1 && ys.scalar_type() == at::kFloat, "decode: ys must be float32 [rows]");
  TORCH_CHECK(max_lanes >= 1 && max_lanes <= 64, "decode: max_lanes must be in 1..64");
  const int rows = static_cast<int>(ys.size(0));
  const at::Tensor yc = ys.contiguous();
  at::Tensor xs = at::empty({bt.K, bt.B, max_lanes, rows}, opts);
  at::Tensor sc = at::empty({bt.K, bt.B, max_lanes}, opts);
  at::parallel_for(0, bt.K * bt.B, 1, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      const auto lanes = image_fn(i / bt.B, i % bt.B);
      decode::emit_lanes(lanes, map, yc.data_ptr<float>(), rows, static_cast<int>(max_lanes),
                         xs.data_ptr<float>() + i * max_lanes * rows, sc.data_ptr<float>() + i * max_lanes);
    }
  });
  if (!bt.any_k) return {xs.squeeze(0), sc.squeeze(0)};
  return {xs, sc};
}

std::tuple<at::Tensor, at::Tensor> decode_laneatt_cpu(const at::Tensor& cls, const at::Tensor& reg,
                                                      const at::Tensor& anchor_xs, const at::Tensor& row_ys,
                                                      const at::Tensor& ys, double sx, double sy, double crop_top,
                                                      int64_t frame_width, int64_t input_width, int64_t max_lanes,
                                                      double threshold, double nms_dist, int64_t top_k) {
  const char* op = "decode_laneatt";
  TORCH_CHECK(cls.is_floating_point() && cls.dim() >= 2 && cls.size(-1) == 2, op,
              ": expected cls_logits [.., N, 2] logits, got ", cls.sizes());
  // foreground probability of the 2-class softmax, with the same kernel as the reference
  const BatchView c = head_view(op, "cls_logits", at::softmax(cls.detach().to(at::kFloat), -1).select(-1, 1), 1);
  const BatchView r = head_view(op, "reg", reg, 2);
  const int64_t n = c.t.size(-1), rows = r.t.size(-1) - 1;
  TORCH_CHECK(r.t.size(-2) == n, op, ": expected reg [.., N, 1 + R] with N = ", n);
  TORCH_CHECK(anchor_xs.scalar_type() == at::kFloat && anchor_xs.dim() == 2 && anchor_xs.size(0) == n &&
                  anchor_xs.size(1) == rows, op, ": anchor_xs must be float32 [N, R] = [", n, ", ", rows, "]");
  TORCH_CHECK(row_ys.scalar_type() == at::kFloat && row_ys.dim() == 1 && row_ys.size(0) == rows, op,
              ": row_ys must be float32 [R]");
  const Batch bt = batch_of(op, {&c, &r});
  const at::Tensor ax = anchor_xs.contiguous(), ry = row_ys.contiguous();
  decode::LaneATTParams p;
  p.threshold = static_cast<float>(threshold);
  p.nms_dist = static_cast<float>(nms_dist);
  p.top_k = static_cast<int>(top_k);
  p.width = static_cast<int>(input_width);
  return run_decoder(bt, ys, input_map(op, sx, sy, crop_top, frame_width), max_lanes, c.t.options(),
                     [&](int64_t k, int64_t b) {
                       return decode::laneatt_image(image_ptr(c, k, b, bt.B), image_ptr(r, k, b, bt.B),
                                                    ax.data_ptr<float>(), ry.data_ptr<float>(), static_cast<int>(n),
                                                    static_cast<int>(rows), p);
                     });
}

std::tuple<at::Tensor, at::Tensor> decode_bezier_cpu(const at::Tensor& logits, const at::Tensor& curves,
                                                     const at::Tensor& ys, double sx, double sy, double crop_top,
                                                     int64_t frame_width, int64_t input_width, int64_t input_height,
                                                     int64_t max_lanes, double threshold, int64_t window,
                                                     int64_t samples) {
  const char* op = "decode_bezier";
  TORCH_CHECK(logits.is_floating_point(), op, ": logits must be floating point");
  const BatchView l = head_view(op, "logits", at::sigmoid(logits.detach().to(at::kFloat)), 1);
  const BatchView c = head_view(op, "curves", curves, 3);
  const int64_t q = l.t.size(-1);
  TORCH_CHECK(c.t.size(-3) == q && c.t.size(-2) == 4 && c.t.size(-1) == 2, op,
              ": expected logits [.., Q] and curves [.., Q, 4, 2]");
  TORCH_CHECK(window >= 1 && window % 2 == 1 && samples >= 2, op, ": window must be odd and samples >= 2");
  const Batch bt = batch_of(op, {&l, &c});
  decode::BezierParams p;
  p.threshold = static_cast<float>(threshold);
  p.window = static_cast<int>(window);
  p.samples = static_cast<int>(samples);
  p.width = static_cast<int>(input_width);
  p.height = static_cast<int>(input_height);
  return run_decoder(bt, ys, input_map(op, sx, sy, crop_top, frame_width), max_lanes, l.t.options(),
                     [&](int64_t k, int64_t b) {
                       return decode::bezier_image(image_ptr(l, k, b, bt.B), image_ptr(c, k, b, bt.B),
                                                   static_cast<int>(q), p);
                     });
}

std::tuple<at::Tensor, at::Tensor> decode_scnn_cpu(const at::Tensor& seg, const at::Tensor& exist,
                                                   const at::Tensor& sample_rows, const at::Tensor& ys, double sx,
                                                   double sy, double crop_top, int64_t frame_width,
                                                   int64_t input_width, int64_t input_height, int64_t max_lanes,
                                                   double exist_threshold, double point_threshold, int64_t blur) {
  const char* op = "decode_scnn";
  TORCH_CHECK(seg.is_floating_point() && (seg.dim() == 4 || seg.dim() == 5), op,
              ": out must be floating point [B, C, h, w] or [K, B, C, h, w], got ", seg.sizes());
  TORCH_CHECK(input_width > 0 && input_height > 0, op, ": input size must be positive");
  // softmax over channels with the reference's kernel (the upsampling happens in the core, row by row)
  const BatchView s = head_view(op, "out", at::softmax(seg.detach().to(at::kFloat), seg.dim() - 3), 3);
  TORCH_CHECK(exist.is_floating_point(), op, ": lane must be floating point");
  const BatchView e = head_view(op, "lane", at::sigmoid(exist.detach().to(at::kFloat)), 1);
  const int64_t channels = s.t.size(-3);
  TORCH_CHECK(e.t.size(-1) == channels - 1, op, ": lane must have one logit per lane channel (", channels - 1, ")");
  TORCH_CHECK(sample_rows.scalar_type() == at::kInt && sample_rows.dim() == 1, op, ": sample_rows must be int32 [n]");
  const at::Tensor rows = sample_rows.contiguous();
  const int* rp = rows.data_ptr<int>();
  for (int64_t i = 0; i < rows.size(0); ++i)
    TORCH_CHECK(rp[i] >= 0 && rp[i] < input_height, op, ": sample row ", rp[i], " outside the input height ", input_height);
  TORCH_CHECK(blur >= 1 && blur % 2 == 1, op, ": blur must be odd");
  const Batch bt = batch_of(op, {&s, &e});
  decode::SCNNParams p;
  p.exist_threshold = static_cast<float>(exist_threshold);
  p.point_threshold = static_cast<float>(point_threshold);
  p.blur = static_cast<int>(blur);
  p.width = static_cast<int>(input_width);
  p.height = static_cast<int>(input_height);
  const int h = static_cast<int>(s.t.size(-2)), w = static_cast<int>(s.t.size(-1));
  return run_decoder(bt, ys, input_map(op, sx, sy, crop_top, frame_width), max_lanes, s.t.options(),
                     [&](int64_t k, int64_t b) {
                       return decode::scnn_image(image_ptr(s, k, b, bt.B), image_ptr(e, k, b, bt.B),
                                                 static_cast<int>(channels), h, w, rp, static_cast<int>(rows.size(0)), p);
                     });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(selfocus, m) {
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
      "decode_scnn(Tensor out, Tensor lane, Tensor sample_rows, Tensor ys, float sx, float sy, float crop_top, "
      "int frame_width, int input_width, int input_height, int max_lanes=8, float exist_threshold=0.5, "
      "float point_threshold=0.3, int blur=9) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(selfocus, CPU, m) {
  m.impl("decode_ganet", &decode_ganet_cpu);
  m.impl("decode_laneatt", &decode_laneatt_cpu);
  m.impl("decode_bezier", &decode_bezier_cpu);
  m.impl("decode_scnn", &decode_scnn_cpu);
}

}  // namespace glue
}  // namespace selfocus
