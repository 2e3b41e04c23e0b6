// One-to-one matching that maximises the total weight (Kuhn-Munkres / Hungarian method with potentials,
// O(n^2 m)), on fixed-size local arrays so that the same code runs in a CPU loop and inside a CUDA thread.
#pragma once

#include "quant_math.h"  // SF_HD

namespace selfocus {
namespace lanes {

// weight: row-major [rows, cols] (float or double). Writes row_match[r] = matched column or -1. Every row is matched when
// rows <= cols, every column otherwise; a pair's weight may be zero (callers drop pairs they do not
// accept). Requires rows, cols <= kMax.
template <int kMax, typename Weight>
SF_HD void max_weight_matching(const Weight* weight, int rows, int cols, int* row_match) {
  for (int r = 0; r < rows; ++r) row_match[r] = -1;
  if (rows == 0 || cols == 0) return;
  // Work on the orientation with n <= m; cost = -weight (minimisation).
  const bool flip = rows > cols;
  const int n = flip ? cols : rows;
  const int m = flip ? rows : cols;
  double u[kMax + 1], v[kMax + 1], minv[kMax + 1];
  int p[kMax + 1], way[kMax + 1];
  bool used[kMax + 1];
  for (int j = 0; j <= m; ++j) {
    v[j] = 0.0;
    p[j] = 0;
    way[j] = 0;
  }
  for (int i = 0; i <= n; ++i) u[i] = 0.0;
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    for (int j = 0; j <= m; ++j) {
      minv[j] = 1e300;
      used[j] = false;
    }
    do {
      used[j0] = true;
      const int i0 = p[j0];
      double delta = 1e300;
      int j1 = 0;
      for (int j = 1; j <= m; ++j) {
        if (used[j]) continue;
        const int r = flip ? j - 1 : i0 - 1;
        const int c = flip ? i0 - 1 : j - 1;
        const double cur = -static_cast<double>(weight[r * cols + c]) - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= m; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  for (int j = 1; j <= m; ++j) {
    if (p[j] == 0) continue;
    if (flip) {
      row_match[j - 1] = p[j] - 1;
    } else {
      row_match[p[j] - 1] = j - 1;
    }
  }
}

}  // namespace lanes
}  // namespace selfocus
