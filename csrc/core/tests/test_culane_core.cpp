// Tests of the CULane rasterisation core: spline sampling and the bit mask.
#include <cmath>
#include <vector>

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
  const Point repeated[4] = {{100, 590}, {100, 590}, {120, 500}, {160, 400}};
  auto c = interpolate_lane(repeated, 4);
  CHECK_EQ(c.size(), 101u);
  for (size_t i = 0; i < c.size(); ++i) CHECK(std::isfinite(c[i].x) && std::isfinite(c[i].y));
  const Point one[1] = {{5, 5}};
  CHECK_EQ(interpolate_lane(one, 1).size(), 0u);
  // a straight line stays straight: natural spline of collinear points
  const Point line[4] = {{0, 0}, {10, 10}, {20, 20}, {40, 40}};
  for (const auto& p : interpolate_lane(line, 4)) CHECK_NEAR(p.x, p.y, 1e-3);
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
  RUN(test_mask_bits);
  RUN(test_thick_line_covers_its_capsule);
  return report();
}
