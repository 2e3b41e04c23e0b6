// Tests of the published detectors' core pieces on hand-built cases: line suppression (its quirks kept)
// and the deformable convolution's bilinear sampling and gradients.
#include <cmath>
#include <random>
#include <vector>

#include "../deform_conv.h"
#include "../line_nms.h"
#include "check.h"

using namespace selfocus;

static std::vector<float> line(float start, float length, float x, float slope, int n = 72) {
  std::vector<float> p(2 + n);
  p[0] = start;
  p[1] = length;
  for (int i = 0; i < n; ++i) p[2 + i] = x + slope * i;
  return p;
}

static void test_line_nms_suppresses_close_lines_only() {
  std::vector<float> all;
  for (auto& l : {line(0.0f, 72, 100, 1), line(0.0f, 72, 120, 1), line(0.0f, 72, 300, -1), line(0.5f, 10, 100, 1)})
    all.insert(all.end(), l.begin(), l.end());
  const int64_t order[4] = {0, 1, 2, 3};
  int64_t keep[4];
  // 20 px apart: suppressed at threshold 50, kept at 15; the short line overlapping line 0 on its rows too
  CHECK_EQ(nms::line_nms(all.data(), 4, 74, order, 50.0f, 4, keep), 2);
  CHECK_EQ(keep[0], 0);
  CHECK_EQ(keep[1], 2);
  CHECK_EQ(nms::line_nms(all.data(), 4, 74, order, 15.0f, 4, keep), 3);
  CHECK_EQ(nms::line_nms(all.data(), 4, 74, order, 15.0f, 1, keep), 1);
  const int64_t reversed[4] = {3, 2, 1, 0};
  CHECK_EQ(nms::line_nms(all.data(), 4, 74, reversed, 50.0f, 4, keep), 2);
  CHECK_EQ(keep[0], 3);
}

static void test_line_nms_end_row_quirk() {
  // the end row drops by one when the third x offset is below 1 (a length read from that slot)
  std::vector<float> a = line(0.0f, 2, 0.5f, 0), b = line(0.0f, 2, 0.5f, 0);
  b[3] = 40.0f;  // differs on row 1 only: with a[4] < 1 only row 0 is compared, so they overlap
  CHECK(nms::lines_overlap(a.data(), b.data(), 72, 1.0f));
  a[4] = b[4] = 5.0f;  // now rows 0 and 1 are compared: mean distance 19.75 px
  CHECK(!nms::lines_overlap(a.data(), b.data(), 72, 1.0f));
}

static float sample(const std::vector<float>& img, int h, int w, float y, float x) {
  return dcn::bilinear(img.data(), h, w, y, x);
}

static void test_bilinear_reads() {
  const int h = 3, w = 4;
  std::vector<float> img(h * w);
  for (int i = 0; i < h * w; ++i) img[i] = static_cast<float>(i);
  CHECK_EQ(sample(img, h, w, 1.0f, 2.0f), 6.0f);           // on a pixel
  CHECK_EQ(sample(img, h, w, 0.5f, 0.5f), 2.5f);           // between four
  CHECK_EQ(sample(img, h, w, -1.0f, 1.0f), 0.0f);          // one pixel outside: zero
  CHECK_EQ(sample(img, h, w, -0.5f, 0.0f), 0.0f);          // half outside: the inside corner, halved
  CHECK_EQ(sample(img, h, w, 2.5f, 3.0f), 0.5f * 11.0f);
  CHECK_EQ(sample(img, h, w, 1.0f, 4.0f), 0.0f);
}

static void test_bilinear_gradient_matches_differences() {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(-1.5f, 5.5f);
  const int h = 5, w = 6;
  std::vector<float> img(h * w);
  for (auto& v : img) v = u(gen);
  for (int t = 0; t < 200; ++t) {
    const float y = u(gen), x = u(gen), eps = 1e-3f;
    const float fy = y - std::floor(y), fx = x - std::floor(x);  // differences must not straddle a pixel row/column
    if (fy < 2 * eps || fy > 1 - 2 * eps || fx < 2 * eps || fx > 1 - 2 * eps) continue;
    float gy, gx;
    dcn::bilinear_grad(img.data(), h, w, y, x, &gy, &gx);
    const float ny = (sample(img, h, w, y + eps, x) - sample(img, h, w, y - eps, x)) / (2 * eps);
    const float nx = (sample(img, h, w, y, x + eps) - sample(img, h, w, y, x - eps)) / (2 * eps);
    CHECK(std::fabs(gy - ny) < 2e-2f);
    CHECK(std::fabs(gx - nx) < 2e-2f);
  }
}

int main() {
  test_line_nms_suppresses_close_lines_only();
  test_line_nms_end_row_quirk();
  test_bilinear_reads();
  test_bilinear_gradient_matches_differences();
  return selfocus_test::failures() == 0 ? 0 : 1;
}
