// Batched lane decoders: schemas and CPU implementations over csrc/core (lane_decode.cpp by default, or the
// portable per-image decoders that the CUDA kernels run). Inputs may carry a leading Monte-Carlo dimension
// K (K noisy copies of one head with the other heads shared): the output is then [K, B, ...].
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <torch/library.h>
#include <vector>

#include "../core/decode_portable.h"
#include "decode_args.h"

namespace selfocus {
namespace glue {

namespace {
std::atomic<bool> g_portable{false};
}  // namespace

void set_decode_backend(const std::string& name) {
  TORCH_CHECK(name == "native" || name == "portable", "set_decode_backend: expected 'native' or 'portable', got '",
              name, "'");
  g_portable = name == "portable";
}

std::string decode_backend() { return g_portable ? "portable" : "native"; }

namespace {

// Decodes every (draw, image) item: `native(k, b)` returns the image's lanes for emit_lanes; `portable(k, b,
// xs, scores, workspace)` writes the LaneSet row itself in a workspace of `workspace_bytes`.
template <typename Native, typename Portable>
std::tuple<at::Tensor, at::Tensor> run_cpu(const DecodeCall& call, size_t workspace_bytes, Native&& native,
                                           Portable&& portable) {
  const int64_t rows = call.rows, L = call.max_lanes, B = call.bt.B;
  at::Tensor xs = at::empty({call.bt.K, B, L, rows}, call.a.t.options());
  at::Tensor sc = at::empty({call.bt.K, B, L}, call.a.t.options());
  const float* ys = call.ys.data_ptr<float>();
  const bool use_portable = g_portable;
  at::parallel_for(0, call.bt.K * B, 1, [&](int64_t s, int64_t e) {
    std::vector<unsigned char> ws(use_portable ? workspace_bytes : 0);
    for (int64_t i = s; i < e; ++i) {
      float* x = xs.data_ptr<float>() + i * L * rows;
      float* c = sc.data_ptr<float>() + i * L;
      if (use_portable) {
        portable(i / B, i % B, x, c, ws.data());
      } else {
        decode::emit_lanes(native(i / B, i % B), call.map, ys, static_cast<int>(rows), static_cast<int>(L), x, c);
      }
    }
  });
  return finish(call, xs, sc);
}

std::tuple<at::Tensor, at::Tensor> decode_ganet_cpu(const at::Tensor& hm, const at::Tensor& pts, const at::Tensor& intr,
                                                    const at::Tensor& ys, double sx, double sy, double crop_top,
                                                    int64_t frame_width, int64_t max_lanes, double threshold,
                                                    double seed_dist, double cluster_dist, double assign_dist,
                                                    int64_t stride) {
  const DecodeCall c = prepare_ganet(hm, pts, intr, ys, sx, sy, crop_top, frame_width, max_lanes, threshold, seed_dist,
                                     cluster_dist, assign_dist, stride);
  const int64_t B = c.bt.B;
  return run_cpu(
      c, decode::portable::ganet_workspace(c.h, c.w),
      [&](int64_t k, int64_t b) {
        return decode::ganet_image(image_ptr(c.a, k, b, B), image_ptr(c.b, k, b, B), image_ptr(c.c, k, b, B), c.h, c.w,
                                   c.ganet);
      },
      [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
        decode::portable::ganet_item(image_ptr(c.a, k, b, B), image_ptr(c.b, k, b, B), image_ptr(c.c, k, b, B), c.h,
                                     c.w, c.ganet, c.map, c.ys.data_ptr<float>(), c.rows, static_cast<int>(c.max_lanes),
                                     x, s, ws);
      });
}

std::tuple<at::Tensor, at::Tensor> decode_laneatt_cpu(const at::Tensor& cls, const at::Tensor& reg,
                                                      const at::Tensor& anchor_xs, const at::Tensor& row_ys,
                                                      const at::Tensor& ys, double sx, double sy, double crop_top,
                                                      int64_t frame_width, int64_t input_width, int64_t max_lanes,
                                                      double threshold, double nms_dist, int64_t top_k) {
  const DecodeCall c = prepare_laneatt(cls, reg, anchor_xs, row_ys, ys, sx, sy, crop_top, frame_width, input_width,
                                       max_lanes, threshold, nms_dist, top_k);
  const int64_t B = c.bt.B;
  const float* ax = c.aux0.data_ptr<float>();
  const float* ry = c.aux1.data_ptr<float>();
  return run_cpu(
      c, decode::portable::laneatt_workspace(c.n, c.h, c.laneatt.top_k),
      [&](int64_t k, int64_t b) {
        return decode::laneatt_image(image_ptr(c.a, k, b, B), image_ptr(c.b, k, b, B), ax, ry, c.n, c.h, c.laneatt);
      },
      [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
        decode::portable::laneatt_item(image_ptr(c.a, k, b, B), image_ptr(c.b, k, b, B), ax, ry, c.n, c.h, c.laneatt,
                                       c.map, c.ys.data_ptr<float>(), c.rows, static_cast<int>(c.max_lanes), x, s, ws);
      });
}

std::tuple<at::Tensor, at::Tensor> decode_bezier_cpu(const at::Tensor& logits, const at::Tensor& curves,
                                                     const at::Tensor& ys, double sx, double sy, double crop_top,
                                                     int64_t frame_width, int64_t input_width, int64_t input_height,
                                                     int64_t max_lanes, double threshold, int64_t window,
                                                     int64_t samples) {
  const DecodeCall c = prepare_bezier(logits, curves, ys, sx, sy, crop_top, frame_width, input_width, input_height,
                                      max_lanes, threshold, window, samples);
  const int64_t B = c.bt.B;
  return run_cpu(
      c, decode::portable::bezier_workspace(c.n, c.bezier.samples),
      [&](int64_t k, int64_t b) {
        return decode::bezier_image(image_ptr(c.a, k, b, B), image_ptr(c.b, k, b, B), c.n, c.bezier);
      },
      [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
        decode::portable::bezier_item(image_ptr(c.a, k, b, B), image_ptr(c.b, k, b, B), c.n, c.bezier, c.map,
                                      c.ys.data_ptr<float>(), c.rows, static_cast<int>(c.max_lanes), x, s, ws);
      });
}

std::tuple<at::Tensor, at::Tensor> decode_scnn_cpu(const at::Tensor& seg, const at::Tensor& exist,
                                                   const at::Tensor& sample_rows, const at::Tensor& ys, double sx,
                                                   double sy, double crop_top, int64_t frame_width,
                                                   int64_t input_width, int64_t input_height, int64_t max_lanes,
                                                   double exist_threshold, double point_threshold, int64_t blur) {
  const DecodeCall c = prepare_scnn(seg, exist, sample_rows, ys, sx, sy, crop_top, frame_width, input_width,
                                    input_height, max_lanes, exist_threshold, point_threshold, blur);
  const int64_t B = c.bt.B;
  const int* rp = c.aux0.data_ptr<int>();
  const int n_rows = static_cast<int>(c.aux0.size(0));
  return run_cpu(
      c, decode::portable::scnn_workspace(c.channels, c.h, n_rows, c.scnn),
      [&](int64_t k, int64_t b) {
        return decode::scnn_image(image_ptr(c.a, k, b, B), image_ptr(c.b, k, b, B), c.channels, c.h, c.w, rp, n_rows,
                                  c.scnn);
      },
      [&](int64_t k, int64_t b, float* x, float* s, unsigned char* ws) {
        decode::portable::scnn_item(image_ptr(c.a, k, b, B), image_ptr(c.b, k, b, B), c.channels, c.h, c.w, rp, n_rows,
                                    c.scnn, c.map, c.ys.data_ptr<float>(), c.rows, static_cast<int>(c.max_lanes), x, s,
                                    ws);
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
