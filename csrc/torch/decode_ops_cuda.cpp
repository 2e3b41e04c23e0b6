// CUDA implementations of the batched lane decoders. Compiled only when torch has CUDA. Probabilities come
// from ATen on the device; the per-image decoding runs in csrc/cuda/decode_kernels.cu, items in chunks
// whose workspace stays within a fixed budget.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "../cuda/decode_kernels.cuh"
#include "decode_args.h"

namespace selfocus {
namespace glue {

// decode_ops.cpp
std::tuple<at::Tensor, at::Tensor> decode_condlane_published_cpu(
    const at::Tensor& hm, const at::Tensor& params, const at::Tensor& features, const at::Tensor& range,
    const at::Tensor& ys, int64_t input_width, int64_t input_height, int64_t frame_width, int64_t frame_height,
    double crop_top, int64_t max_lanes, double threshold, double group_distance);

namespace {

constexpr size_t kWorkspaceBudget = size_t{256} << 20;  // bytes of per-item scratch in flight

cuda::HeadPtr head_ptr(const BatchView& v, int64_t B) {
  return {v.t.data_ptr<float>(), v.has_k ? B * v.image_numel : 0, v.image_numel};
}

// Allocates the outputs and the workspace, then calls `launch(first, count, out)` chunk by chunk.
template <typename Launch>
std::tuple<at::Tensor, at::Tensor> run_cuda(const char* op, const DecodeCommon& call, const at::Tensor& head,
                                            size_t per_item, Launch&& launch) {
  const c10::cuda::CUDAGuard guard(head.device());
  const int64_t items = call.bt.K * call.bt.B;
  at::Tensor xs = at::empty({call.bt.K, call.bt.B, call.max_lanes, call.rows}, head.options());
  at::Tensor sc = at::empty({call.bt.K, call.bt.B, call.max_lanes}, head.options());
  const at::Tensor ys = call.ys.to(head.device());
  per_item = (per_item + 15) & ~size_t{15};
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(items, kWorkspaceBudget / std::max<size_t>(per_item, 1)));
  at::Tensor ws = at::empty({static_cast<int64_t>(per_item) * chunk}, head.options().dtype(at::kByte));
  cuda::DecodeOut out{ys.data_ptr<float>(), call.rows, static_cast<int>(call.max_lanes), xs.data_ptr<float>(),
                      sc.data_ptr<float>(), ws.data_ptr<uint8_t>(), per_item};
  for (int64_t first = 0; first < items; first += chunk) {
    const cudaError_t err = launch(first, std::min(chunk, items - first), out, c10::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
  }
  return finish(call, xs, sc);
}

std::tuple<at::Tensor, at::Tensor> decode_ganet_cuda(const at::Tensor& hm, const at::Tensor& pts,
                                                     const at::Tensor& intr, const at::Tensor& ys, double sx, double sy,
                                                     double crop_top, int64_t frame_width, int64_t max_lanes,
                                                     double threshold, double seed_dist, double cluster_dist,
                                                     double assign_dist, int64_t stride) {
  const c10::cuda::CUDAGuard guard(hm.device());
  const GANetCall c = prepare_ganet(hm, pts, intr, ys, sx, sy, crop_top, frame_width, max_lanes, threshold, seed_dist,
                                    cluster_dist, assign_dist, stride);
  const int64_t B = c.bt.B;
  return run_cuda("decode_ganet", c, c.kpts_prob.t, decode::ganet_workspace(c.h, c.w),
                  [&](int64_t first, int64_t count, const cuda::DecodeOut& o, cudaStream_t s) {
                    return cuda::decode_ganet(head_ptr(c.kpts_prob, B), head_ptr(c.pts_offset, B),
                                              head_ptr(c.int_offset, B), B, first, count, c.h, c.w, c.params, c.map, o,
                                              s);
                  });
}

std::tuple<at::Tensor, at::Tensor> decode_laneatt_cuda(const at::Tensor& cls, const at::Tensor& reg,
                                                       const at::Tensor& anchor_xs, const at::Tensor& row_ys,
                                                       const at::Tensor& ys, double sx, double sy, double crop_top,
                                                       int64_t frame_width, int64_t input_width, int64_t max_lanes,
                                                       double threshold, double nms_dist, int64_t top_k) {
  const c10::cuda::CUDAGuard guard(cls.device());
  const LaneATTCall c = prepare_laneatt(cls, reg, anchor_xs, row_ys, ys, sx, sy, crop_top, frame_width, input_width,
                                        max_lanes, threshold, nms_dist, top_k);
  const int64_t B = c.bt.B;
  const at::Tensor ax = c.anchor_xs.to(c.fg_prob.t.device()), ry = c.row_ys.to(c.fg_prob.t.device());
  return run_cuda("decode_laneatt", c, c.fg_prob.t, decode::laneatt_workspace(c.anchors, c.offset_rows, c.params.top_k),
                  [&](int64_t first, int64_t count, const cuda::DecodeOut& o, cudaStream_t s) {
                    return cuda::decode_laneatt(head_ptr(c.fg_prob, B), head_ptr(c.reg, B), ax.data_ptr<float>(),
                                                ry.data_ptr<float>(), B, first, count, c.anchors, c.offset_rows,
                                                c.params, c.map, o, s);
                  });
}

std::tuple<at::Tensor, at::Tensor> decode_bezier_cuda(const at::Tensor& logits, const at::Tensor& curves,
                                                      const at::Tensor& ys, double sx, double sy, double crop_top,
                                                      int64_t frame_width, int64_t input_width, int64_t input_height,
                                                      int64_t max_lanes, double threshold, int64_t window,
                                                      int64_t samples) {
  const c10::cuda::CUDAGuard guard(logits.device());
  const BezierCall c = prepare_bezier(logits, curves, ys, sx, sy, crop_top, frame_width, input_width, input_height,
                                      max_lanes, threshold, window, samples);
  const int64_t B = c.bt.B;
  return run_cuda("decode_bezier", c, c.exist_prob.t, decode::bezier_workspace(c.queries, c.params.samples),
                  [&](int64_t first, int64_t count, const cuda::DecodeOut& o, cudaStream_t s) {
                    return cuda::decode_bezier(head_ptr(c.exist_prob, B), head_ptr(c.curves, B), B, first, count,
                                               c.queries, c.params, c.map, o, s);
                  });
}

std::tuple<at::Tensor, at::Tensor> decode_lstr_cuda(const at::Tensor& logits, const at::Tensor& curves,
                                                    const at::Tensor& sample_ys, const at::Tensor& ys, double sx,
                                                    double sy, double crop_top, int64_t frame_width,
                                                    int64_t input_width, int64_t input_height, int64_t max_lanes,
                                                    double threshold, int64_t max_keep) {
  const c10::cuda::CUDAGuard guard(logits.device());
  const LSTRCall c = prepare_lstr(logits, curves, sample_ys, ys, sx, sy, crop_top, frame_width, input_width,
                                  input_height, max_lanes, threshold, max_keep);
  const int64_t B = c.bt.B;
  const at::Tensor rows = c.sample_ys.to(c.lane_prob.t.device());
  return run_cuda("decode_lstr", c, c.lane_prob.t, decode::lstr_workspace(c.queries, c.n_rows),
                  [&](int64_t first, int64_t count, const cuda::DecodeOut& o, cudaStream_t s) {
                    return cuda::decode_lstr(head_ptr(c.lane_prob, B), head_ptr(c.curves, B), rows.data_ptr<float>(),
                                             c.n_rows, B, first, count, c.queries, c.params, c.map, o, s);
                  });
}

std::tuple<at::Tensor, at::Tensor> decode_condlane_cuda(const at::Tensor& proposal, const at::Tensor& params,
                                                        const at::Tensor& features, const at::Tensor& range,
                                                        const at::Tensor& ys, double sx, double sy, double crop_top,
                                                        int64_t frame_width, int64_t max_lanes, double threshold,
                                                        double range_threshold, double merge_dist, int64_t max_seeds,
                                                        int64_t stride) {
  const c10::cuda::CUDAGuard guard(proposal.device());
  const CondLaneCall c = prepare_condlane(proposal, params, features, range, ys, sx, sy, crop_top, frame_width,
                                          max_lanes, threshold, range_threshold, merge_dist, max_seeds, stride);
  const int64_t B = c.bt.B;
  return run_cuda("decode_condlane", c, c.proposal_prob.t,
                  decode::condlane_workspace(c.h16, c.w16, c.params_.max_seeds, c.h8, c.w8, c.C),
                  [&](int64_t first, int64_t count, const cuda::DecodeOut& o, cudaStream_t s) {
                    return cuda::decode_condlane(head_ptr(c.proposal_prob, B), head_ptr(c.params, B),
                                                 head_ptr(c.features, B), head_ptr(c.range_prob, B), B, first, count,
                                                 c.C, c.h16, c.w16, c.h8, c.w8, c.params_, c.map, o, s);
                  });
}

std::tuple<at::Tensor, at::Tensor> decode_scnn_cuda(const at::Tensor& seg, const at::Tensor& exist,
                                                    const at::Tensor& sample_rows, const at::Tensor& ys, double sx,
                                                    double sy, double crop_top, int64_t frame_width,
                                                    int64_t input_width, int64_t input_height, int64_t max_lanes,
                                                    double exist_threshold, double point_threshold, int64_t blur) {
  const c10::cuda::CUDAGuard guard(seg.device());
  const SCNNCall c = prepare_scnn(seg, exist, sample_rows, ys, sx, sy, crop_top, frame_width, input_width,
                                  input_height, max_lanes, exist_threshold, point_threshold, blur);
  const int64_t B = c.bt.B;
  const int n_rows = static_cast<int>(c.sample_rows.size(0));
  const at::Tensor rows = c.sample_rows.to(c.seg_prob.t.device());
  return run_cuda("decode_scnn", c, c.seg_prob.t, decode::scnn_workspace(c.channels, c.h, n_rows, c.params),
                  [&](int64_t first, int64_t count, const cuda::DecodeOut& o, cudaStream_t s) {
                    return cuda::decode_scnn(head_ptr(c.seg_prob, B), head_ptr(c.exist_prob, B), rows.data_ptr<int>(),
                                             n_rows, B, first, count, c.channels, c.h, c.w, c.params, c.map, o, s);
                  });
}

std::tuple<at::Tensor, at::Tensor> decode_lstr_published_cuda(const at::Tensor& logits, const at::Tensor& curves,
                                                              const at::Tensor& ys, int64_t frame_width,
                                                              int64_t frame_height, int64_t max_lanes,
                                                              double threshold, int64_t gap, int64_t points) {
  const c10::cuda::CUDAGuard guard(logits.device());
  const LSTRPublishedCall c =
      prepare_lstr_published(logits, curves, ys, frame_width, frame_height, max_lanes, threshold, gap, points);
  const int64_t B = c.bt.B;
  return run_cuda("decode_lstr_published", c, c.prob.t, decode::lstr_published_workspace(c.queries, c.params.points),
                  [&](int64_t first, int64_t count, const cuda::DecodeOut& o, cudaStream_t s) {
                    return cuda::decode_lstr_published(head_ptr(c.prob, B), head_ptr(c.curves, B), B, first, count,
                                                       c.queries, c.params, o, s);
                  });
}

std::tuple<at::Tensor, at::Tensor> decode_bezier_published_cuda(const at::Tensor& logits, const at::Tensor& curves,
                                                                const at::Tensor& ys, int64_t frame_width,
                                                                int64_t frame_height, int64_t max_lanes,
                                                                double threshold, int64_t window, int64_t samples) {
  const c10::cuda::CUDAGuard guard(logits.device());
  const BezierPublishedCall c =
      prepare_bezier_published(logits, curves, ys, frame_width, frame_height, max_lanes, threshold, window, samples);
  const int64_t B = c.bt.B;
  return run_cuda("decode_bezier_published", c, c.prob.t,
                  decode::bezier_published_workspace(c.queries, c.params.samples),
                  [&](int64_t first, int64_t count, const cuda::DecodeOut& o, cudaStream_t s) {
                    return cuda::decode_bezier_published(head_ptr(c.prob, B), head_ptr(c.curves, B), B, first, count,
                                                         c.queries, c.params, o, s);
                  });
}

// Chunks of items whose resized maps and workspaces stay within the budgets: ATen resizes and softmaxes a
// chunk, the kernel decodes it (one thread per item).
std::tuple<at::Tensor, at::Tensor> decode_segmentation_published_cuda(
    const at::Tensor& out, const at::Tensor& lane, const at::Tensor& sample_rows, const at::Tensor& frame_rows,
    const at::Tensor& ys, int64_t frame_width, int64_t input_width, int64_t input_height, int64_t max_lanes,
    double exist_threshold, double point_threshold, int64_t blur, bool align_corners, bool official) {
  const char* op = "decode_segmentation_published";
  const c10::cuda::CUDAGuard guard(out.device());
  const SegPublishedCall c =
      prepare_seg_published(out, lane, sample_rows, frame_rows, ys, frame_width, input_width, input_height, max_lanes,
                            exist_threshold, point_threshold, blur, align_corners, official);
  const at::Tensor& head = c.seg.t;
  const int64_t B = c.bt.B, items = c.bt.K * B;
  at::Tensor xs = at::empty({c.bt.K, B, c.max_lanes, c.rows}, head.options());
  at::Tensor sc = at::empty({c.bt.K, B, c.max_lanes}, head.options());
  const at::Tensor dys = c.ys.to(head.device()), drows = c.sample_rows.to(head.device()),
                   dframe = c.frame_rows.to(head.device());
  const int n_rows = static_cast<int>(c.sample_rows.size(0));
  const size_t per_item = (decode::seg_published_workspace(c.channels, n_rows, c.params) + 15) & ~size_t{15};
  const int64_t chunk = std::max<int64_t>(
      1, std::min<int64_t>(seg_published_chunk(c), static_cast<int64_t>(kWorkspaceBudget / per_item)));
  at::Tensor ws = at::empty({static_cast<int64_t>(per_item) * std::min(chunk, std::max<int64_t>(items, 1))},
                            head.options().dtype(at::kByte));
  cuda::DecodeOut o{dys.data_ptr<float>(), c.rows, static_cast<int>(c.max_lanes), xs.data_ptr<float>(),
                    sc.data_ptr<float>(), ws.data_ptr<uint8_t>(), per_item};
  for (int64_t first = 0; first < items; first += chunk) {
    const int64_t n = std::min(chunk, items - first);
    const at::Tensor maps = seg_published_maps(c, first, n);
    const cudaError_t err = cuda::decode_seg_published(
        maps.data_ptr<float>(), head_ptr(c.exist_prob, B), drows.data_ptr<int>(), dframe.data_ptr<double>(), n_rows,
        B, first, n, c.channels, c.params, o, c10::cuda::getCurrentCUDAStream());
    TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
  }
  return finish(c, xs, sc);
}

std::tuple<at::Tensor, at::Tensor> run_anchor_published_cuda(const char* op, bool laneatt, const AnchorPublishedCall& c) {
  const int64_t B = c.bt.B;
  const int n_samples = static_cast<int>(c.sample_ys.size(0));
  const at::Tensor prior = c.prior_ys.to(c.prob.t.device()), samples = c.sample_ys.to(c.prob.t.device());
  return run_cuda(op, c, c.prob.t, decode::anchor_published_workspace(c.n, c.points, n_samples, c.params.top_k),
                  [&](int64_t first, int64_t count, const cuda::DecodeOut& o, cudaStream_t s) {
                    return cuda::decode_anchor_published(laneatt, head_ptr(c.prob, B), head_ptr(c.lanes, B),
                                                         prior.data_ptr<float>(), samples.data_ptr<double>(),
                                                         n_samples, B, first, count, c.n, c.points, c.params, o, s);
                  });
}

std::tuple<at::Tensor, at::Tensor> decode_clrnet_published_cuda(
    const at::Tensor& cls, const at::Tensor& lanes, const at::Tensor& prior_ys, const at::Tensor& sample_ys,
    const at::Tensor& ys, int64_t input_width, int64_t frame_width, int64_t frame_height, double crop_top,
    int64_t max_lanes, double threshold, double nms_threshold, int64_t top_k) {
  const c10::cuda::CUDAGuard guard(cls.device());
  const AnchorPublishedCall c =
      prepare_anchor_published("decode_clrnet_published", cls, lanes, "lanes", 4, prior_ys, sample_ys, ys, input_width,
                               frame_width, frame_height, crop_top, max_lanes, threshold, nms_threshold, top_k, false);
  return run_anchor_published_cuda("decode_clrnet_published", false, c);
}

std::tuple<at::Tensor, at::Tensor> decode_laneatt_published_cuda(
    const at::Tensor& cls, const at::Tensor& proposals, const at::Tensor& prior_ys, const at::Tensor& sample_ys,
    const at::Tensor& ys, int64_t input_width, int64_t frame_width, int64_t frame_height, int64_t max_lanes,
    double threshold, double nms_threshold, int64_t top_k, bool official) {
  const c10::cuda::CUDAGuard guard(cls.device());
  const AnchorPublishedCall c = prepare_anchor_published(
      "decode_laneatt_published", cls, proposals, "proposals", 2, prior_ys, sample_ys, ys, input_width, frame_width,
      frame_height, 0.0, max_lanes, threshold, nms_threshold, top_k, official);
  return run_anchor_published_cuda("decode_laneatt_published", true, c);
}

std::tuple<at::Tensor, at::Tensor> decode_ganet_published_cuda(
    const at::Tensor& kpts_hm, const at::Tensor& pts_offset, const at::Tensor& int_offset, const at::Tensor& ys,
    int64_t input_width, int64_t input_height, int64_t frame_width, int64_t frame_height, double crop_top,
    int64_t max_lanes, double threshold, double root_threshold, double cluster_distance, int64_t min_points) {
  const c10::cuda::CUDAGuard guard(kpts_hm.device());
  const GANetPublishedCall c =
      prepare_ganet_published(kpts_hm, pts_offset, int_offset, ys, input_width, input_height, frame_width,
                              frame_height, crop_top, max_lanes, threshold, root_threshold, cluster_distance,
                              min_points);
  const int64_t B = c.bt.B;
  return run_cuda("decode_ganet_published", c, c.prob.t, decode::ganet_published_workspace(c.h, c.w),
                  [&](int64_t first, int64_t count, const cuda::DecodeOut& o, cudaStream_t s) {
                    return cuda::decode_ganet_published(head_ptr(c.prob, B), head_ptr(c.offset, B),
                                                        head_ptr(c.error, B), B, first, count, c.h, c.w, c.params, o,
                                                        s);
                  });
}

// CondLaneNet's published post-processing runs the implementation's dynamic convolutions with ATen's CPU
// kernels (a device convolution would not give the reference's bits): the heads go to the host and the
// lanes come back.
std::tuple<at::Tensor, at::Tensor> decode_condlane_published_cuda(
    const at::Tensor& hm, const at::Tensor& params, const at::Tensor& features, const at::Tensor& range,
    const at::Tensor& ys, int64_t input_width, int64_t input_height, int64_t frame_width, int64_t frame_height,
    double crop_top, int64_t max_lanes, double threshold, double group_distance) {
  TORCH_CHECK(params.device() == hm.device() && features.device() == hm.device() && range.device() == hm.device(),
              "decode_condlane_published: all heads must be on one device");
  auto [xs, sc] = decode_condlane_published_cpu(hm.cpu(), params.cpu(), features.cpu(), range.cpu(), ys.cpu(),
                                                input_width, input_height, frame_width, frame_height, crop_top,
                                                max_lanes, threshold, group_distance);
  return {xs.to(hm.device()), sc.to(hm.device())};
}

}  // namespace

TORCH_LIBRARY_IMPL(selfocus, CUDA, m) {
  m.impl("decode_ganet", &decode_ganet_cuda);
  m.impl("decode_laneatt", &decode_laneatt_cuda);
  m.impl("decode_bezier", &decode_bezier_cuda);
  m.impl("decode_lstr_published", &decode_lstr_published_cuda);
  m.impl("decode_bezier_published", &decode_bezier_published_cuda);
  m.impl("decode_segmentation_published", &decode_segmentation_published_cuda);
  m.impl("decode_clrnet_published", &decode_clrnet_published_cuda);
  m.impl("decode_laneatt_published", &decode_laneatt_published_cuda);
  m.impl("decode_ganet_published", &decode_ganet_published_cuda);
  m.impl("decode_condlane_published", &decode_condlane_published_cuda);
  m.impl("decode_lstr", &decode_lstr_cuda);
  m.impl("decode_condlane", &decode_condlane_cuda);
  m.impl("decode_scnn", &decode_scnn_cuda);
}

}  // namespace glue
}  // namespace selfocus
