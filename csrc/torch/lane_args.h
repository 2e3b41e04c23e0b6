// Argument checks of the lane ops, shared by the CPU and CUDA implementations.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>

#include "../core/lane_distortion.h"

namespace selfocus {
namespace glue {

struct DistortionCall {
  at::Tensor ref;   // [images, ref_lanes, rows], contiguous float32
  at::Tensor pert;  // [draws, images, pert_lanes, rows], contiguous float32
  at::Tensor ys;    // [rows]
  bool batched;     // pert was given as [draws, images, lanes, rows]
  lanes::DistortionParams params;
};

inline void check_lane_tensor(const char* op, const char* name, const at::Tensor& t, const char* shape) {
  TORCH_CHECK(t.defined(), op, ": ", name, " must be a tensor, got None");
  TORCH_CHECK(t.scalar_type() == at::kFloat, op, ": ", name, " must be float32 ", shape, ", got ", t.scalar_type());
}

inline DistortionCall prepare_distortion(const at::Tensor& ref, const at::Tensor& pert, const at::Tensor& ys,
                                         double width, double penalty, double min_iou) {
  const char* op = "lane_distortion";
  check_lane_tensor(op, "ref", ref, "[images, lanes, rows]");
  check_lane_tensor(op, "pert", pert, "[images, lanes, rows] or [draws, images, lanes, rows]");
  check_lane_tensor(op, "ys", ys, "[rows]");
  TORCH_CHECK(ref.dim() == 3, op, ": ref must have shape [images, lanes, rows], got ", ref.sizes());
  TORCH_CHECK(pert.dim() == 3 || pert.dim() == 4, op,
              ": pert must have shape [images, lanes, rows] or [draws, images, lanes, rows], got ", pert.sizes());
  TORCH_CHECK(ys.dim() == 1, op, ": ys must have shape [rows], got ", ys.sizes());
  TORCH_CHECK(pert.device() == ref.device() && ys.device() == ref.device(), op,
              ": ref, pert and ys must be on one device, got ", ref.device(), ", ", pert.device(), ", ", ys.device());
  const bool batched = pert.dim() == 4;
  const at::Tensor p4 = batched ? pert : pert.unsqueeze(0);
  const int64_t rows = ref.size(2);
  TORCH_CHECK(ys.size(0) == rows && p4.size(3) == rows, op, ": ys, ref and pert must have the same number of rows, got ",
              ys.size(0), ", ", rows, ", ", p4.size(3));
  TORCH_CHECK(p4.size(1) == ref.size(0), op, ": pert must score the ", ref.size(0), " images of ref, got ",
              p4.size(1), " images (shape ", pert.sizes(), ")");
  TORCH_CHECK(ref.size(1) <= lanes::kMaxScoreLanes && p4.size(2) <= lanes::kMaxScoreLanes, op,
              ": at most ", lanes::kMaxScoreLanes, " lanes per image, got ", ref.size(1), " and ", p4.size(2));
  TORCH_CHECK(std::isfinite(width) && width > 0.0, op, ": width must be positive and finite, got ", width);
  TORCH_CHECK(std::isfinite(penalty) && penalty >= 0.0, op, ": penalty must be finite and >= 0, got ", penalty);
  TORCH_CHECK(min_iou > 0.0 && min_iou <= 1.0, op, ": min_iou must be in (0, 1], got ", min_iou);
  if (ref.device().is_cpu()) {
    // NaN marks a missing point; an infinite coordinate is an error.
    TORCH_CHECK(!at::isinf(ref).any().item<bool>(), op, ": ref has infinite coordinates (use NaN for missing points)");
    TORCH_CHECK(!at::isinf(pert).any().item<bool>(), op, ": pert has infinite coordinates (use NaN for missing points)");
    TORCH_CHECK(at::isfinite(ys).all().item<bool>(), op, ": ys must be finite");
  }
  return {ref.contiguous(), p4.contiguous(), ys.contiguous(), batched,
          {static_cast<float>(width), static_cast<float>(penalty), static_cast<float>(min_iou)}};
}

}  // namespace glue
}  // namespace selfocus
