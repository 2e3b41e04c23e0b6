// selfocus::line_nms: the anchor-based detectors' line suppression (csrc/core/line_nms.h) on the CPU, with
// its argument checks. Proposals are visited by descending score (a stable sort: equal scores keep their
// index order).
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/line_nms.h"

namespace selfocus {
namespace glue {
namespace {

at::Tensor line_nms_cpu(const at::Tensor& proposals, const at::Tensor& scores, double threshold, int64_t top_k,
                        int64_t start_index, int64_t length_index, int64_t xs_index) {
  TORCH_CHECK(proposals.dim() == 2, "line_nms: proposals must be [N, 2 + offsets], got ", proposals.sizes());
  TORCH_CHECK(proposals.scalar_type() == at::kFloat, "line_nms: proposals must be float32, got ",
              proposals.scalar_type());
  TORCH_CHECK(xs_index >= 0 && start_index >= 0 && length_index >= 0 && start_index < xs_index &&
                  length_index < xs_index,
              "line_nms: start_index and length_index must come before xs_index, got ", start_index, ", ",
              length_index, ", ", xs_index);
  TORCH_CHECK(proposals.size(1) >= std::max<int64_t>(5, xs_index + 2), "line_nms: proposals of ", proposals.size(1),
              " values are too short for xs at ", xs_index, " (at least 2 rows, and index 4 is read)");
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == proposals.size(0), "line_nms: scores must be [N] with N = ",
              proposals.size(0), ", got ", scores.sizes());
  TORCH_CHECK(scores.is_floating_point(), "line_nms: scores must be floating point, got ", scores.scalar_type());
  TORCH_CHECK(std::isfinite(threshold) && threshold >= 0, "line_nms: threshold must be finite and >= 0, got ",
              threshold);
  TORCH_CHECK(top_k >= 0, "line_nms: top_k must be >= 0, got ", top_k);
  TORCH_CHECK(proposals.device().is_cpu() && scores.device().is_cpu(), "line_nms: expects CPU tensors");
  const at::Tensor p = proposals.contiguous();
  const int64_t n = p.size(0);
  const at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, 0, /*descending=*/true)).contiguous();
  at::Tensor keep = at::empty({std::min(n, top_k)}, at::kLong);
  if (n == 0 || top_k == 0) return keep;
  std::vector<int64_t> out(static_cast<size_t>(n));
  nms::ProposalLayout layout;
  layout.start = static_cast<int>(start_index);
  layout.length = static_cast<int>(length_index);
  layout.xs = static_cast<int>(xs_index);
  const int64_t kept = nms::line_nms(p.data_ptr<float>(), n, static_cast<int>(p.size(1)), order.data_ptr<int64_t>(),
                                     static_cast<float>(threshold), top_k, out.data(), layout);
  keep = at::empty({kept}, at::kLong);
  std::copy(out.begin(), out.begin() + kept, keep.data_ptr<int64_t>());
  return keep;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(selfocus, m) {
  m.def("line_nms(Tensor proposals, Tensor scores, float threshold, int top_k, int start_index=0, "
        "int length_index=1, int xs_index=2) -> Tensor");
}

TORCH_LIBRARY_IMPL(selfocus, CPU, m) { m.impl("line_nms", &line_nms_cpu); }

}  // namespace glue
}  // namespace selfocus
