// What several published post-processings share: pytorch-auto-drive's lane pruning.
#pragma once

#include "../common.h"

namespace selfocus {
namespace decode {

// keep[q] (1 = kept, changed in place): while more than `max_lanes` are kept, every entry equal to the
// smallest remaining confidence is dropped at once (ties together, as published); an entry once dropped
// counts as 1.1 from then on. `work` [n] is scratch. NaN confidences are never kept and never the minimum
// (the published loop would not end on them).
SF_HDF void prune_lanes(const float* conf, unsigned char* keep, double* work, int n, int max_lanes) {
  int kept = 0;
  for (int q = 0; q < n; ++q) {
    work[q] = static_cast<double>(conf[q]);
    kept += keep[q];
  }
  while (kept > max_lanes) {
    double m = 0.0;
    bool any = false;
    for (int q = 0; q < n; ++q)
      if (work[q] == work[q] && (!any || work[q] < m)) {
        m = work[q];
        any = true;
      }
    if (!any) break;
    for (int q = 0; q < n; ++q)
      if (work[q] == m) {
        kept -= keep[q];
        keep[q] = 0;
        work[q] = 1.1;
      }
  }
}

}  // namespace decode
}  // namespace selfocus
