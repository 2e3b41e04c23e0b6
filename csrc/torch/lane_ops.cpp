// Schemas of the selfocus lane ops and their CPU implementations (the per-image work lives in csrc/core).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <string>
#include <vector>

#include "../core/assignment.h"
#include "../core/culane_eval.h"
#include "../core/lane_distortion_cpu.h"
#include "lane_args.h"

namespace selfocus {
namespace glue {
namespace {

at::Tensor lane_distortion_cpu(const at::Tensor& ref, const at::Tensor& pert, const at::Tensor& ys, double width,
                               double penalty, double min_iou) {
  const DistortionCall c = prepare_distortion(ref, pert, ys, width, penalty, min_iou);
  const int64_t draws = c.pert.size(0), images = c.ref.size(0);
  at::Tensor out = at::empty({draws, images}, c.ref.options());
  const float* rp = c.ref.data_ptr<float>();
  const float* pp = c.pert.data_ptr<float>();
  const float* yp = c.ys.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int ref_lanes = static_cast<int>(c.ref.size(1));
  const int pert_lanes = static_cast<int>(c.pert.size(2));
  const int rows = static_cast<int>(c.ref.size(2));
  if (images > 0) {
    at::parallel_for(0, draws * images, 64, [&](int64_t b, int64_t e) {
      lanes::distortion_scores(rp, images, ref_lanes, pp, pert_lanes, yp, rows, c.params, op, b, e);
    });
  }
  return c.batched ? out : out.squeeze(0);
}

// A batch of lanes in CSR form: points [P, 2], lane_starts [L + 1] into points, image_starts [N + 1] into
// lanes. Checked before any pointer is followed.
struct PackedLanes {
  at::Tensor points, lanes, images;
};

PackedLanes check_packed(const char* op, const char* name, const at::Tensor& points, const at::Tensor& lanes,
                         const at::Tensor& images, int64_t max_lanes) {
  TORCH_CHECK(points.device().is_cpu() && lanes.device().is_cpu() && images.device().is_cpu(), op, ": ", name,
              " lanes must be CPU tensors");
  TORCH_CHECK(points.scalar_type() == at::kFloat && points.dim() == 2 && points.size(1) == 2, op, ": ", name,
              "_points must be float32 [P, 2], got ", points.scalar_type(), " ", points.sizes());
  TORCH_CHECK(lanes.scalar_type() == at::kLong && lanes.dim() == 1 && lanes.size(0) >= 1, op, ": ", name,
              "_lanes must be int64 [L + 1] offsets, got ", lanes.scalar_type(), " ", lanes.sizes());
  TORCH_CHECK(images.scalar_type() == at::kLong && images.dim() == 1 && images.size(0) >= 1, op, ": ", name,
              "_images must be int64 [N + 1] offsets, got ", images.scalar_type(), " ", images.sizes());
  PackedLanes out{points.contiguous(), lanes.contiguous(), images.contiguous()};
  const int64_t* l = out.lanes.data_ptr<int64_t>();
  const int64_t* im = out.images.data_ptr<int64_t>();
  const int64_t nl = out.lanes.size(0) - 1, ni = out.images.size(0) - 1;
  TORCH_CHECK(l[0] == 0 && l[nl] == out.points.size(0), op, ": ", name, "_lanes must start at 0 and end at ",
              out.points.size(0), " (the number of points)");
  TORCH_CHECK(im[0] == 0 && im[ni] == nl, op, ": ", name, "_images must start at 0 and end at ", nl,
              " (the number of lanes)");
  for (int64_t i = 0; i < nl; ++i) {
    TORCH_CHECK(l[i] <= l[i + 1], op, ": ", name, "_lanes must be non-decreasing (at ", i, ")");
    TORCH_CHECK(l[i + 1] - l[i] <= std::numeric_limits<int>::max(), op, ": ", name, " lane ", i,
                " has too many points");
  }
  for (int64_t i = 0; i < ni; ++i) {
    TORCH_CHECK(im[i] <= im[i + 1], op, ": ", name, "_images must be non-decreasing (at ", i, ")");
    TORCH_CHECK(im[i + 1] - im[i] <= max_lanes, op, ": at most ", max_lanes, " lanes per image, image ", i, " of ",
                name, " has ", im[i + 1] - im[i]);
  }
  // Non-finite coordinates are allowed: they are rasterised as the official tool does (cvRound gives
  // INT_MIN), which is what a coordinate beyond float32's range in a .lines.txt file becomes there.
  return out;
}

culane::Matcher parse_matcher(const char* op, c10::string_view matcher) {
  if (matcher == "official") return culane::Matcher::kOfficial;
  if (matcher == "exact") return culane::Matcher::kExact;
  TORCH_CHECK(false, op, ": matcher must be 'official' or 'exact', got '", std::string(matcher.data(), matcher.size()),
              "'");
}

std::tuple<at::Tensor, at::Tensor> culane_match_cpu(const at::Tensor& pred_points, const at::Tensor& pred_lanes,
                                                    const at::Tensor& pred_images, const at::Tensor& gt_points,
                                                    const at::Tensor& gt_lanes, const at::Tensor& gt_images,
                                                    int64_t width, int64_t height, int64_t lane_width,
                                                    c10::string_view matcher) {
  const char* op = "culane_match";
  const culane::Matcher which = parse_matcher(op, matcher);
  const int64_t max_lanes = which == culane::Matcher::kExact ? culane::kMaxLanesExact : culane::kMaxLanesOfficial;
  TORCH_CHECK(width > 0 && height > 0 && width <= 65536 && height <= 65536, op,
              ": width and height must be in 1..65536, got ", width, "x", height);
  TORCH_CHECK(lane_width >= 2 && lane_width <= 1024, op, ": lane_width must be in 2..1024, got ", lane_width);
  const PackedLanes pred = check_packed(op, "pred", pred_points, pred_lanes, pred_images, max_lanes);
  const PackedLanes gt = check_packed(op, "gt", gt_points, gt_lanes, gt_images, max_lanes);
  const int64_t images = gt.images.size(0) - 1;
  TORCH_CHECK(pred.images.size(0) - 1 == images, op, ": pred and gt must describe the same number of images, got ",
              pred.images.size(0) - 1, " and ", images);
  const int64_t* pl = pred.lanes.data_ptr<int64_t>();
  const int64_t* pi = pred.images.data_ptr<int64_t>();
  const int64_t* gl = gt.lanes.data_ptr<int64_t>();
  const int64_t* gi = gt.images.data_ptr<int64_t>();
  // Offsets of each image's IoU block.
  std::vector<int64_t> iou_start(images + 1, 0);
  for (int64_t i = 0; i < images; ++i) iou_start[i + 1] = iou_start[i] + (gi[i + 1] - gi[i]) * (pi[i + 1] - pi[i]);
  at::Tensor iou = at::zeros({iou_start[images]}, gt.points.options().dtype(at::kDouble));
  at::Tensor match = at::full({gt.lanes.size(0) - 1}, -1, gt.lanes.options());
  const auto* pp = reinterpret_cast<const culane::Point*>(pred.points.data_ptr<float>());
  const auto* gp = reinterpret_cast<const culane::Point*>(gt.points.data_ptr<float>());
  double* iou_p = iou.data_ptr<double>();
  int64_t* match_p = match.data_ptr<int64_t>();
  const culane::MetricParams params{static_cast<int>(width), static_cast<int>(height), static_cast<int>(lane_width),
                                    which};
  at::parallel_for(0, images, 1, [&](int64_t b, int64_t e) {
    std::vector<culane::LaneView> gv, pv;
    for (int64_t i = b; i < e; ++i) {
      gv.clear();
      pv.clear();
      for (int64_t l = gi[i]; l < gi[i + 1]; ++l) gv.push_back({gp + gl[l], static_cast<int>(gl[l + 1] - gl[l])});
      for (int64_t l = pi[i]; l < pi[i + 1]; ++l) pv.push_back({pp + pl[l], static_cast<int>(pl[l + 1] - pl[l])});
      culane::match_image(gv.data(), static_cast<int>(gv.size()), pv.data(), static_cast<int>(pv.size()), params,
                          iou_p + iou_start[i], match_p + gi[i]);
    }
  });
  return {match, iou};
}

at::Tensor max_weight_matching_cpu(const at::Tensor& weight) {
  const char* op = "max_weight_matching";
  TORCH_CHECK(weight.scalar_type() == at::kFloat && weight.dim() == 2, op,
              ": weight must be a float32 [rows, cols] matrix, got ", weight.scalar_type(), " ", weight.sizes());
  TORCH_CHECK(weight.size(0) <= culane::kMaxLanesExact && weight.size(1) <= culane::kMaxLanesExact, op,
              ": at most ", culane::kMaxLanesExact, " rows and columns, got ", weight.sizes());
  TORCH_CHECK(at::isfinite(weight).all().item<bool>(), op, ": weight must be finite");
  const at::Tensor w = weight.contiguous();
  int match[culane::kMaxLanesExact];
  lanes::max_weight_matching<culane::kMaxLanesExact>(w.data_ptr<float>(), static_cast<int>(w.size(0)),
                                                       static_cast<int>(w.size(1)), match);
  at::Tensor out = at::empty({w.size(0)}, w.options().dtype(at::kLong));
  for (int64_t r = 0; r < w.size(0); ++r) out[r] = match[r];
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(selfocus, m) {
  m.def(
      "lane_distortion(Tensor ref, Tensor pert, Tensor ys, float width=30.0, float penalty=1.0, "
      "float min_iou=0.5) -> Tensor");
  m.def(
      "culane_match(Tensor pred_points, Tensor pred_lanes, Tensor pred_images, Tensor gt_points, Tensor gt_lanes, "
      "Tensor gt_images, int width=1640, int height=590, int lane_width=30, str matcher=\"official\") "
      "-> (Tensor, Tensor)");
  m.def("max_weight_matching(Tensor weight) -> Tensor");
}

TORCH_LIBRARY_IMPL(selfocus, CPU, m) {
  m.impl("lane_distortion", &lane_distortion_cpu);
  m.impl("culane_match", &culane_match_cpu);
  m.impl("max_weight_matching", &max_weight_matching_cpu);
}

}  // namespace glue
}  // namespace selfocus
