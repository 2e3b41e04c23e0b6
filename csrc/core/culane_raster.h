// Lane rasterisation of the CULane metric (no torch). It reproduces, step by step, what the official
// evaluation tool does to a lane: a natural cubic spline through its points parameterised by chord length
// (50 samples per segment), each sample rounded to an integer pixel, and every consecutive pair drawn as
// a thick line with round caps the way OpenCV's cv::line (LINE_8) draws it: a filled convex quadrilateral
// in 16.16 fixed point with its outline, plus a filled midpoint circle at each end.
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
// samples when it has more, nothing when it has fewer. Consecutive repeated points are removed first
// (the official spline divides by zero on them).
std::vector<Point> interpolate_lane(const Point* pts, int n, int samples_per_segment = 50);

// A binary canvas of width x height pixels stored as bits, with the rows it touches.
class Mask {
 public:
  Mask(int width, int height);
  int width() const { return width_; }
  int height() const { return height_; }
  void hline(int y, int x0, int x1);  // sets [x0, x1] of row y, clipped to the canvas
  void point(int x, int y);
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

// cv::line(mask, p0, p1, 1, thickness) with integer end points (LINE_8, shift 0).
void draw_thick_line(Mask& mask, int x0, int y0, int x1, int y1, int thickness);

// Draws a lane as the official tool does (interpolation, rounding to pixels, thick segments).
void draw_lane(Mask& mask, const Point* pts, int n, int thickness);

}  // namespace culane
}  // namespace selfocus
