// Line non-maximum suppression of anchor-based lane proposals (LaneATT as pytorch-auto-drive and the
// official implementation run it, and CLRNet). Plain C++: a proposal holds its start (fraction of the rows),
// its length (rows) and its x at each of n rows (input pixels, the bottom row first) at the positions a
// `ProposalLayout` names: pytorch-auto-drive's (start, length, x...) or the official 77-value one
// (2 scores, start, start x, length, x...). Two proposals overlap when their mean horizontal distance over
// the rows both cover is below the threshold.
//
// The published kernel's arithmetic is kept bit for bit, quirks included, because the lanes it keeps are
// the published model's output: the start row rounds start * (n - 1) by truncating +0.5, the end row is
// start + length - 1, plus 0.5 in double, truncated, minus one when the proposal's value at index 4 is below 1
// (the length in the 77-value layout; in pytorch-auto-drive's 74-value layout the kernel reads its third x
// there, and so does this), and the distances are summed in float, bottom row first.
//
// A start or an end that is not a number, or lies beyond the rows by more than their count, makes the two
// proposals not overlap (the kernel's float-to-int conversion is undefined there; with such values it would
// index outside the proposal).
#pragma once

#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define SF_NMS_HD __host__ __device__ inline
#else
#define SF_NMS_HD inline
#endif

namespace selfocus {
namespace nms {

struct ProposalLayout {
  int start = 0, length = 1, xs = 2;  // pytorch-auto-drive; the official layout is {2, 4, 5}
};

// The kernel's truncation of v to int, when v lies within [-limit, limit]; false (no such row) otherwise.
SF_NMS_HD bool row_index(double v, int limit, int* out) {
  if (!(v >= -static_cast<double>(limit) && v <= static_cast<double>(limit))) return false;
  *out = static_cast<int>(v);
  return true;
}

SF_NMS_HD bool lines_overlap(const float* a, const float* b, int n_offsets, float threshold,
                             const ProposalLayout& l = ProposalLayout()) {
  const int strips = n_offsets - 1, limit = 2 * n_offsets + 2;
  // the kernel's promotions: float products and sums, then + 0.5 (a double) and the truncation
  int start_a, start_b, end_a, end_b;
  if (!row_index(static_cast<double>(a[l.start] * static_cast<float>(strips)) + 0.5, limit, &start_a) ||
      !row_index(static_cast<double>(b[l.start] * static_cast<float>(strips)) + 0.5, limit, &start_b))
    return false;
  const int start = start_a > start_b ? start_a : start_b;
  if (!row_index(static_cast<double>(static_cast<float>(start_a) + a[l.length] - 1.0f) + 0.5 - ((a[4] - 1.0f) < 0.0f),
                 limit, &end_a) ||
      !row_index(static_cast<double>(static_cast<float>(start_b) + b[l.length] - 1.0f) + 0.5 - ((b[4] - 1.0f) < 0.0f),
                 limit, &end_b))
    return false;
  if (start < -l.xs) return false;  // (the kernel reads the fields before the xs, but not before the proposal)
  int end = end_a < end_b ? end_a : end_b;
  if (end > n_offsets - 1) end = n_offsets - 1;
  if (end < start) return false;
  float dist = 0.0f;
  for (int i = l.xs + start; i <= l.xs + end; ++i) dist += a[i] < b[i] ? b[i] - a[i] : a[i] - b[i];
  return dist < threshold * static_cast<float>(end - start + 1);
}

// Greedy suppression over proposals visited in `order` (highest score first): a proposal is kept unless a
// kept one overlaps it; at most `top_k` are kept. Writes the kept proposals' indices (into the proposal
// array) to `keep` and returns how many; `removed` [count] is scratch. `width` = layout.xs + n_offsets values
// per proposal. (No allocation: a CUDA thread runs it too.)
template <typename Index>
SF_NMS_HD Index greedy_suppress(const float* proposals, Index count, int width, const Index* order, float threshold,
                                Index top_k, Index* keep, unsigned char* removed, const ProposalLayout& layout) {
  const int n_offsets = width - layout.xs;
  for (Index i = 0; i < count; ++i) removed[i] = 0;
  Index kept = 0;
  for (Index i = 0; i < count && kept < top_k; ++i) {
    if (removed[i]) continue;
    const float* a = proposals + static_cast<int64_t>(order[i]) * width;
    keep[kept++] = order[i];
    for (Index j = i + 1; j < count; ++j)
      if (!removed[j] && lines_overlap(a, proposals + static_cast<int64_t>(order[j]) * width, n_offsets, threshold, layout))
        removed[j] = 1;
  }
  return kept;
}

inline int64_t line_nms(const float* proposals, int64_t count, int width, const int64_t* order, float threshold,
                        int64_t top_k, int64_t* keep, const ProposalLayout& layout = ProposalLayout()) {
  std::vector<unsigned char> removed(static_cast<size_t>(count));
  return greedy_suppress<int64_t>(proposals, count, width, order, threshold, top_k, keep, removed.data(), layout);
}

}  // namespace nms
}  // namespace selfocus
