// Tests of the lane core: the assignment solver and the Lane Distortion Score on hand-built cases.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "../assignment.h"
#include "../lane_distortion.h"
#include "check.h"

using namespace selfocus::lanes;

static const float kNaN = std::numeric_limits<float>::quiet_NaN();

static void test_assignment_against_brute_force() {
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int trial = 0; trial < 300; ++trial) {
    const int rows = 1 + trial % 5, cols = 1 + (trial / 5) % 5;
    std::vector<float> w(rows * cols);
    for (auto& e : w) e = u(gen);
    int match[8];
    max_weight_matching<8>(w.data(), rows, cols, match);
    double got = 0.0;
    std::vector<int> used(cols, 0);
    for (int r = 0; r < rows; ++r) {
      if (match[r] < 0) continue;
      CHECK(!used[match[r]]);
      used[match[r]] = 1;
      got += w[r * cols + match[r]];
    }
    // brute force over injective maps of the smaller side
    double best = 0.0;
    std::vector<int> perm(cols);
    for (int c = 0; c < cols; ++c) perm[c] = c;
    std::vector<int> idx(rows < cols ? rows : cols);
    // enumerate all assignments recursively
    struct Rec {
      static void go(const std::vector<float>& w, int rows, int cols, int r, std::vector<int>& taken, double acc,
                     double& best) {
        if (r == rows) {
          best = acc > best ? acc : best;
          return;
        }
        go(w, rows, cols, r + 1, taken, acc, best);  // row r unmatched
        for (int c = 0; c < cols; ++c) {
          if (taken[c]) continue;
          taken[c] = 1;
          go(w, rows, cols, r + 1, taken, acc + w[r * cols + c], best);
          taken[c] = 0;
        }
      }
    };
    std::vector<int> taken(cols, 0);
    Rec::go(w, rows, cols, 0, taken, 0.0, best);
    CHECK_NEAR(got, best, 1e-5);
  }
}

static void test_identical_sets_score_zero() {
  const int rows = 6;
  const float ys[rows] = {590, 580, 570, 560, 550, 540};
  const float lanes[2 * rows] = {100, 102, 104, 106, 108, 110, 500, 490, kNaN, 470, 460, kNaN};
  CHECK_EQ(distortion_score_image(lanes, 2, lanes, 2, ys, rows, {30.0f, 1.0f, 0.5f}), 0.0f);
}

static void test_shift_and_drop() {
  const int rows = 4;
  const float ys[rows] = {590, 580, 570, 560};
  const float ref[rows] = {100, 100, 100, 100};  // vertical lane: bounding length 30
  const float shifted[rows] = {103, 103, 103, 103};
  // 4 matched points, each 3 px away: 12 / 30
  CHECK_NEAR(distortion_score_image(ref, 1, shifted, 1, ys, rows, {30.0f, 1.0f, 0.5f}), 12.0 / 30.0, 1e-6);
  // the lane disappears: 4 unmatched points at penalty 2
  const float none[rows] = {kNaN, kNaN, kNaN, kNaN};
  CHECK_NEAR(distortion_score_image(ref, 1, none, 1, ys, rows, {30.0f, 2.0f, 0.5f}), 8.0, 1e-6);
  // a shift beyond the band width cannot be matched: both lanes count as unmatched
  const float far[rows] = {200, 200, 200, 200};
  CHECK_NEAR(distortion_score_image(ref, 1, far, 1, ys, rows, {30.0f, 1.0f, 0.5f}), 8.0, 1e-6);
  // one point missing from the perturbed lane: 3 matched (0 distance) + 1 mismatched
  const float shorter[rows] = {100, 100, 100, kNaN};
  CHECK_NEAR(distortion_score_image(ref, 1, shorter, 1, ys, rows, {30.0f, 1.0f, 0.5f}), 1.0, 1e-6);
}

int main() {
  RUN(test_assignment_against_brute_force);
  RUN(test_identical_sets_score_zero);
  RUN(test_shift_and_drop);
  return report();
}
