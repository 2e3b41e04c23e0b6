// Tests of the CULane core: spline sampling, rounding to pixels, the bit mask, thick lines, the official
// matcher.
#include <climits>
#include <cmath>
#include <vector>

#include "../culane_eval.h"
#include "../culane_raster.h"
#include "check.h"

using namespace selfocus::culane;

static void test_interpolation_shape() {
  const Point two[2] = {{10, 590}, {20, 500}};
  auto a = interpolate_lane(two, 2);
  CHECK_EQ(a.size(), 2u);  // two-point lanes are drawn as they are
  const Point three[3] = {{100, 590}, {120, 500}, {160, 400}};
  auto b = interpolate_lane(three, 3);
  CHECK_EQ(b.size(), 101u);  // 50 samples per segment plus the end point
  // each segment starts at its knot, and the curve ends at the last point
  CHECK_NEAR(b[0].x, 100, 1e-4);
  CHECK_NEAR(b[50].x, 120, 1e-4);
  CHECK_NEAR(b[50].y, 500, 1e-4);
  CHECK_NEAR(b[100].x, 160, 1e-6);
  // A repeated point is a zero chord: the official spline divides by it, and every sample but the final
  // point is NaN.
  const Point repeated[4] = {{100, 590}, {100, 590}, {120, 500}, {160, 400}};
  auto c = interpolate_lane(repeated, 4);
  CHECK_EQ(c.size(), 151u);
  for (size_t i = 0; i + 1 < c.size(); ++i) CHECK(std::isnan(c[i].x) && std::isnan(c[i].y));
  CHECK(c.back().x == 160 && c.back().y == 400);
  const Point one[1] = {{5, 5}};
  CHECK_EQ(interpolate_lane(one, 1).size(), 0u);
  // a straight line stays straight: natural spline of collinear points
  const Point line[4] = {{0, 0}, {10, 10}, {20, 20}, {40, 40}};
  for (const auto& p : interpolate_lane(line, 4)) CHECK_NEAR(p.x, p.y, 1e-3);
}

static void test_round_to_pixel() {
  CHECK_EQ(round_to_pixel(2.5f), 2);  // ties to even, like cvtss2si
  CHECK_EQ(round_to_pixel(3.5f), 4);
  CHECK_EQ(round_to_pixel(-2.5f), -2);
  CHECK_EQ(round_to_pixel(2147483520.0f), 2147483520);  // the largest float below 2^31
  CHECK_EQ(round_to_pixel(2147483648.0f), INT_MIN);     // out of range, NaN, infinities: INT_MIN
  CHECK_EQ(round_to_pixel(-1e30f), INT_MIN);
  CHECK_EQ(round_to_pixel(NAN), INT_MIN);
  CHECK_EQ(round_to_pixel(INFINITY), INT_MIN);
}

static void test_official_matcher() {
  // All equal rows: the first row takes the first column; a NaN entry is never taken.
  const double sim[4] = {0.9, 0.2, NAN, 0.8};
  int match[2];
  official_match(sim, 2, 2, match);
  CHECK_EQ(match[0], 0);
  CHECK_EQ(match[1], 1);
  // A row of NaN (first on the left) ends the matching: later rows stay unmatched.
  const double stop[4] = {NAN, NAN, 0.9, 0.1};
  official_match(stop, 2, 2, match);
  CHECK_EQ(match[0], -1);
  CHECK_EQ(match[1], -1);
  // More rows than columns: the transposed problem; each column matched once.
  const double tall[3] = {0.1, 0.7, 0.3};
  int m3[3];
  official_match(tall, 3, 1, m3);
  CHECK_EQ(m3[0], -1);
  CHECK_EQ(m3[1], 0);
  CHECK_EQ(m3[2], -1);
}

// A segment leaving the canvas far away is drawn from its clipped outline: pen-wide up to the border.
// From INT_MIN, OpenCV's 32-bit cast of the polygon's top row wraps and the fill is skipped, so only the
// cap at the near end and the outline remain (pixel counts checked against OpenCV 4.6's cv::line).
static void test_far_segments_are_clipped() {
  Mask a(200, 100), b(200, 100), c(200, 100);
  draw_thick_line(a, 100, 50, 100, 1000000, 30);
  draw_thick_line(b, 100, 50, 100, -1000000000, 30);
  draw_thick_line(c, 100, 50, 100, INT_MIN, 30);
  CHECK(a.get(100, 99) && a.get(86, 99) && !a.get(70, 99));
  CHECK(b.get(100, 0) && b.get(86, 0) && !b.get(70, 0));
  CHECK(c.get(100, 50) && !c.get(100, 0));
  CHECK_EQ(a.count(), 1889);
  CHECK_EQ(b.count(), 1920);
  CHECK_EQ(c.count(), 809);
}

static void test_mask_bits() {
  Mask m(200, 10), n(200, 10);
  m.hline(5, 60, 130);
  CHECK_EQ(m.count(), 71);
  n.hline(5, 100, 250);  // clipped at the right border
  CHECK_EQ(n.count(), 100);
  CHECK_EQ(m.intersection(n), 31);
  m.hline(-1, 0, 10);  // outside: ignored
  m.hline(3, -20, 2);
  CHECK_EQ(m.count(), 74);
  CHECK(m.get(0, 3) && m.get(2, 3) && !m.get(3, 3));
  CHECK_EQ(m.row_min(), 3);
  CHECK_EQ(m.row_max(), 5);
}

// The drawn pixels lie between the ideal 30 px capsule shrunk and grown by about a pixel (OpenCV's
// rounding is not symmetric, so exact equality with a geometric shape does not hold).
static void test_thick_line_covers_its_capsule() {
  Mask a(400, 300);
  const double x0 = 100, y0 = 50, x1 = 180, y1 = 250;
  draw_thick_line(a, 100, 50, 180, 250, 30);
  const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  for (int y = 0; y < 300; ++y) {
    for (int x = 0; x < 400; ++x) {
      double t = ((x - x0) * dx + (y - y0) * dy) / len2;
      t = t < 0 ? 0 : (t > 1 ? 1 : t);
      const double d = std::hypot(x - (x0 + t * dx), y - (y0 + t * dy));
      if (d <= 14.0) CHECK(a.get(x, y));
      if (d >= 17.0) CHECK(!a.get(x, y));
    }
  }
}

int main() {
  RUN(test_interpolation_shape);
  RUN(test_round_to_pixel);
  RUN(test_official_matcher);
  RUN(test_far_segments_are_clipped);
  RUN(test_mask_bits);
  RUN(test_thick_line_covers_its_capsule);
  return report();
}
