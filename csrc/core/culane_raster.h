// Lane rasterisation of the CULane metric (no torch). It reproduces, step by step and bit for bit, what the
// official evaluation tool does to a lane: a natural cubic spline through its points parameterised by chord
// length (50 samples per segment, float32 samples), each sample rounded to an integer pixel as OpenCV's
// cvRound does on x86-64, and every consecutive pair drawn the way cv::line (LINE_8, thickness > 1) draws it:
// a convex quadrilateral in 16.16 fixed point whose outline is clipped to the image before it is traced,
// filled scanline by scanline, plus a filled midpoint circle at each end.
//
// Degenerate input behaves as in the official tool, not as geometry would suggest: a lane with consecutive
// repeated points gets NaN spline samples (a division by a zero chord), NaN and coordinates beyond the int
// range round to INT_MIN, and segments from such points are still drawn where they cross the image.
#pragma once

#include <cstdint>
#include <vector>

namespace selfocus {
namespace culane {

struct Point {
  float x;
  float y;
};

// The points the official tool draws for one lane: the lane itself when it has 2 points, the spline
// samples when it has more, nothing when it has fewer.
std::vector<Point> interpolate_lane(const Point* pts, int n, int samples_per_segment = 50);

// OpenCV's cvRound(float) on x86-64 (cvtss2si): nearest, ties to even; NaN and values outside the int
// range give INT_MIN.
int32_t round_to_pixel(float v);

// A binary canvas of width x height pixels stored as bits, with the rows it touches.
class Mask {
 public:
  Mask(int width, int height);
  int width() const { return width_; }
  int height() const { return height_; }
  void hline(int64_t y, int64_t x0, int64_t x1);  // sets [x0, x1] of row y, clipped to the canvas
  void point(int64_t x, int64_t y);
  bool get(int x, int y) const;
  int64_t count() const;
  // |this AND other| over the rows both touch.
  int64_t intersection(const Mask& other) const;
  int row_min() const { return row_min_; }
  int row_max() const { return row_max_; }

 private:
  int width_, height_, words_;
  int row_min_, row_max_;
  std::vector<uint64_t> bits_;
};

// cv::line(mask, p0, p1, 1, thickness) with integer end points (LINE_8, shift 0, thickness >= 2).
void draw_thick_line(Mask& mask, int32_t x0, int32_t y0, int32_t x1, int32_t y1, int thickness);

// Draws a lane as the official tool does (interpolation, rounding to pixels, thick segments). Lanes of
// fewer than 2 points draw nothing.
void draw_lane(Mask& mask, const Point* pts, int n, int thickness);

}  // namespace culane
}  // namespace selfocus
