// Line non-maximum suppression of anchor-based lane proposals (LaneATT as pytorch-auto-drive and the
// official implementation run it; CLRNet's variant differs only in the distance rule). Plain C++: a
// proposal is (start, length, x_0 .. x_{n-1}) in input pixels, x_0 at the bottom row; two proposals
// overlap when their mean horizontal distance over the rows both cover is below the threshold.
//
// The published kernel's arithmetic is kept bit for bit, quirks included, because the lanes it keeps are
// the published model's output: the start row rounds start * (n - 1) by truncating +0.5, the end row is
// start + length - 1, plus 0.5 in double, truncated, minus one when the proposal's third x offset is below 1 (the kernel
// reads a length from that slot of the older 77-value layout), and the distances are summed in float,
// bottom row first.
#pragma once

#include <cstdint>
#include <vector>

namespace selfocus {
namespace nms {

inline bool lines_overlap(const float* a, const float* b, int n_offsets, float threshold) {
  const int strips = n_offsets - 1;
  // the kernel's promotions: float products and sums, then + 0.5 (a double) and the truncation
  const int start_a = static_cast<int>(static_cast<double>(a[0] * static_cast<float>(strips)) + 0.5);
  const int start_b = static_cast<int>(static_cast<double>(b[0] * static_cast<float>(strips)) + 0.5);
  const int start = start_a > start_b ? start_a : start_b;
  const int end_a = static_cast<int>(static_cast<double>(static_cast<float>(start_a) + a[1] - 1.0f) + 0.5 -
                                     ((a[4] - 1.0f) < 0.0f));
  const int end_b = static_cast<int>(static_cast<double>(static_cast<float>(start_b) + b[1] - 1.0f) + 0.5 -
                                     ((b[4] - 1.0f) < 0.0f));
  int end = end_a < end_b ? end_a : end_b;
  if (end > n_offsets - 1) end = n_offsets - 1;
  if (end < start) return false;
  float dist = 0.0f;
  for (int i = 2 + start; i <= 2 + end; ++i) dist += a[i] < b[i] ? b[i] - a[i] : a[i] - b[i];
  return dist < threshold * static_cast<float>(end - start + 1);
}

// Greedy suppression over proposals visited in `order` (highest score first): a proposal is kept unless a
// kept one overlaps it; at most `top_k` are kept. Writes the kept proposals' indices (into the proposal
// array) to `keep` and returns how many. `width` = 2 + n_offsets values per proposal.
inline int64_t line_nms(const float* proposals, int64_t count, int width, const int64_t* order, float threshold,
                        int64_t top_k, int64_t* keep) {
  const int n_offsets = width - 2;
  int64_t kept = 0;
  std::vector<char> removed(static_cast<size_t>(count), 0);
  for (int64_t i = 0; i < count && kept < top_k; ++i) {
    if (removed[i]) continue;
    const float* a = proposals + order[i] * width;
    keep[kept++] = order[i];
    for (int64_t j = i + 1; j < count; ++j)
      if (!removed[j] && lines_overlap(a, proposals + order[j] * width, n_offsets, threshold)) removed[j] = 1;
  }
  return kept;
}

}  // namespace nms
}  // namespace selfocus
