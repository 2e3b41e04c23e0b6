#include "culane_raster.h"

#include <algorithm>
#include <cmath>

namespace selfocus {
namespace culane {
namespace {

constexpr int kShift = 16;
constexpr int64_t kOne = int64_t{1} << kShift;
constexpr int64_t kHalf = kOne >> 1;

// cvRound: round half to even in the default rounding mode.
inline int64_t round_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

struct FixedPoint {
  int64_t x, y;
};

// A one-pixel 8-connected line between fixed-point end points (OpenCV's Line2), used for the outline of
// the filled quadrilateral. Pixels outside the canvas are skipped.
void fixed_line(Mask& mask, FixedPoint p1, FixedPoint p2) {
  int64_t dx = p2.x - p1.x;
  int64_t dy = p2.y - p1.y;
  const int64_t sx = dx < 0 ? -1 : 0;
  const int64_t ax = (dx ^ sx) - sx;
  const int64_t sy = dy < 0 ? -1 : 0;
  const int64_t ay = (dy ^ sy) - sy;
  int64_t x_step, y_step;
  int64_t count;
  if (ax > ay) {
    dy = (dy ^ sx) - sx;
    if (sx) std::swap(p1, p2);
    x_step = kOne;
    y_step = (dy << kShift) / (ax | 1);
    count = (p2.x - p1.x) >> kShift;
  } else {
    dx = (dx ^ sy) - sy;
    if (sy) std::swap(p1, p2);
    x_step = (dx << kShift) / (ay | 1);
    y_step = kOne;
    count = (p2.y - p1.y) >> kShift;
  }
  p1.x += kHalf;
  p1.y += kHalf;
  mask.point(static_cast<int>((p2.x + kHalf) >> kShift), static_cast<int>((p2.y + kHalf) >> kShift));
  if (ax > ay) {
    int64_t x = p1.x >> kShift;
    int64_t y = p1.y;
    for (; count >= 0; --count, ++x, y += y_step) mask.point(static_cast<int>(x), static_cast<int>(y >> kShift));
  } else {
    int64_t x = p1.x;
    int64_t y = p1.y >> kShift;
    for (; count >= 0; --count, x += x_step, ++y) mask.point(static_cast<int>(x >> kShift), static_cast<int>(y));
  }
  (void)x_step;
  (void)y_step;
}

// A filled convex polygon with fixed-point vertices (OpenCV's FillConvexPoly, LINE_8): its outline, then
// the scanlines between the two edge chains that start at the top vertex.
void fill_convex(Mask& mask, const FixedPoint* v, int npts) {
  const int64_t delta = kHalf;
  int64_t xmin = v[0].x, xmax = v[0].x, ymin = v[0].y, ymax = v[0].y;
  int imin = 0;
  FixedPoint prev = v[npts - 1];
  for (int i = 0; i < npts; ++i) {
    const FixedPoint p = v[i];
    if (p.y < ymin) {
      ymin = p.y;
      imin = i;
    }
    ymax = std::max(ymax, p.y);
    xmax = std::max(xmax, p.x);
    xmin = std::min(xmin, p.x);
    fixed_line(mask, prev, p);
    prev = p;
  }
  xmin = (xmin + delta) >> kShift;
  xmax = (xmax + delta) >> kShift;
  ymin = (ymin + delta) >> kShift;
  ymax = (ymax + delta) >> kShift;
  if (npts < 3 || xmax < 0 || ymax < 0 || xmin >= mask.width() || ymin >= mask.height()) return;
  ymax = std::min<int64_t>(ymax, mask.height() - 1);

  struct Edge {
    int idx, di;
    int64_t x, dx;
    int ye;
  } edge[2];
  int y = static_cast<int>(ymin);
  edge[0].idx = edge[1].idx = imin;
  edge[0].ye = edge[1].ye = y;
  edge[0].di = 1;
  edge[1].di = npts - 1;
  edge[0].x = edge[1].x = -kOne;
  edge[0].dx = edge[1].dx = 0;
  int edges = npts;
  do {
    for (int i = 0; i < 2; ++i) {
      if (y < edge[i].ye) continue;
      int idx0 = edge[i].idx;
      const int di = edge[i].di;
      int idx = idx0 + di;
      if (idx >= npts) idx -= npts;
      while (edges-- > 0) {
        const int ty = static_cast<int>((v[idx].y + delta) >> kShift);
        if (ty > y) {
          const int64_t xs = v[idx0].x;
          const int64_t xe = v[idx].x;
          edge[i].ye = ty;
          edge[i].dx = ((xe - xs) * 2 + (ty - y)) / (2 * static_cast<int64_t>(ty - y));
          edge[i].x = xs;
          edge[i].idx = idx;
          break;
        }
        idx0 = idx;
        idx += di;
        if (idx >= npts) idx -= npts;
      }
    }
    if (edges < 0) break;
    if (y >= 0) {
      const int left = edge[0].x > edge[1].x ? 1 : 0;
      const int right = 1 - left;
      const int x1 = static_cast<int>((edge[left].x + delta) >> kShift);
      const int x2 = static_cast<int>((edge[right].x + delta) >> kShift);
      if (x2 >= 0 && x1 < mask.width()) mask.hline(y, x1, x2);
    }
    edge[0].x += edge[0].dx;
    edge[1].x += edge[1].dx;
  } while (++y <= ymax);
}

// A filled circle by the midpoint algorithm (OpenCV's Circle with fill).
void fill_circle(Mask& mask, int cx, int cy, int radius) {
  int err = 0, dx = radius, dy = 0, plus = 1, minus = (radius << 1) - 1;
  while (dx >= dy) {
    mask.hline(cy - dy, cx - dx, cx + dx);
    mask.hline(cy + dy, cx - dx, cx + dx);
    mask.hline(cy - dx, cx - dy, cx + dy);
    mask.hline(cy + dx, cx - dy, cx + dy);
    ++dy;
    err += plus;
    plus += 2;
    const int step = (err <= 0) - 1;  // 0 or -1
    err -= minus & step;
    dx += step;
    minus -= step & 2;
  }
}

}  // namespace

Mask::Mask(int width, int height)
    : width_(width),
      height_(height),
      words_((width + 63) / 64),
      row_min_(height),
      row_max_(-1),
      bits_(static_cast<size_t>(words_) * static_cast<size_t>(height), 0) {}

void Mask::hline(int y, int x0, int x1) {
  if (y < 0 || y >= height_) return;
  x0 = std::max(x0, 0);
  x1 = std::min(x1, width_ - 1);
  if (x1 < x0) return;
  row_min_ = std::min(row_min_, y);
  row_max_ = std::max(row_max_, y);
  uint64_t* row = bits_.data() + static_cast<size_t>(y) * words_;
  const int w0 = x0 >> 6, w1 = x1 >> 6;
  const uint64_t first = ~uint64_t{0} << (x0 & 63);
  const uint64_t last = ~uint64_t{0} >> (63 - (x1 & 63));
  if (w0 == w1) {
    row[w0] |= first & last;
    return;
  }
  row[w0] |= first;
  for (int w = w0 + 1; w < w1; ++w) row[w] = ~uint64_t{0};
  row[w1] |= last;
}

void Mask::point(int x, int y) {
  if (x < 0 || x >= width_ || y < 0 || y >= height_) return;
  hline(y, x, x);
}

bool Mask::get(int x, int y) const {
  if (x < 0 || x >= width_ || y < 0 || y >= height_) return false;
  return (bits_[static_cast<size_t>(y) * words_ + (x >> 6)] >> (x & 63)) & 1u;
}

int64_t Mask::count() const {
  int64_t n = 0;
  for (int y = row_min_; y <= row_max_; ++y) {
    const uint64_t* row = bits_.data() + static_cast<size_t>(y) * words_;
    for (int w = 0; w < words_; ++w) n += __builtin_popcountll(row[w]);
  }
  return n;
}

int64_t Mask::intersection(const Mask& other) const {
  const int y0 = std::max(row_min_, other.row_min_);
  const int y1 = std::min(row_max_, other.row_max_);
  int64_t n = 0;
  for (int y = y0; y <= y1; ++y) {
    const uint64_t* a = bits_.data() + static_cast<size_t>(y) * words_;
    const uint64_t* b = other.bits_.data() + static_cast<size_t>(y) * words_;
    for (int w = 0; w < words_; ++w) n += __builtin_popcountll(a[w] & b[w]);
  }
  return n;
}

std::vector<Point> interpolate_lane(const Point* pts, int n, int samples_per_segment) {
  std::vector<Point> p;
  p.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (!p.empty() && p.back().x == pts[i].x && p.back().y == pts[i].y) continue;
    p.push_back(pts[i]);
  }
  const int m = static_cast<int>(p.size());
  if (m < 3) return m == 2 ? p : std::vector<Point>{};

  // Natural cubic spline in x(t), y(t), t = chord length; second derivatives by the tridiagonal solve.
  std::vector<double> h(m - 1), cp(m - 2), dpx(m - 2), dpy(m - 2), mx(m, 0.0), my(m, 0.0);
  for (int i = 0; i < m - 1; ++i) {
    const double dx = static_cast<double>(p[i + 1].x) - p[i].x;
    const double dy = static_cast<double>(p[i + 1].y) - p[i].y;
    h[i] = std::sqrt(std::pow(dx, 2) + std::pow(dy, 2));
  }
  for (int i = 0; i < m - 2; ++i) {
    const double a = h[i], b = 2 * (h[i] + h[i + 1]), c = h[i + 1];
    const double rx = 6 * ((static_cast<double>(p[i + 2].x) - p[i + 1].x) / h[i + 1] -
                           (static_cast<double>(p[i + 1].x) - p[i].x) / h[i]);
    const double ry = 6 * ((static_cast<double>(p[i + 2].y) - p[i + 1].y) / h[i + 1] -
                           (static_cast<double>(p[i + 1].y) - p[i].y) / h[i]);
    if (i == 0) {
      cp[0] = c / b;
      dpx[0] = rx / b;
      dpy[0] = ry / b;
    } else {
      const double den = b - a * cp[i - 1];
      cp[i] = c / den;
      dpx[i] = (rx - a * dpx[i - 1]) / den;
      dpy[i] = (ry - a * dpy[i - 1]) / den;
    }
  }
  mx[m - 2] = dpx[m - 3];
  my[m - 2] = dpy[m - 3];
  for (int i = m - 4; i >= 0; --i) {
    mx[i + 1] = dpx[i] - cp[i] * mx[i + 2];
    my[i + 1] = dpy[i] - cp[i] * my[i + 2];
  }
  std::vector<Point> out;
  out.reserve(static_cast<size_t>((m - 1) * samples_per_segment + 1));
  for (int i = 0; i < m - 1; ++i) {
    const double ax = p[i].x, ay = p[i].y;
    const double bx = (static_cast<double>(p[i + 1].x) - p[i].x) / h[i] - (2 * h[i] * mx[i] + h[i] * mx[i + 1]) / 6;
    const double by = (static_cast<double>(p[i + 1].y) - p[i].y) / h[i] - (2 * h[i] * my[i] + h[i] * my[i + 1]) / 6;
    const double cx = mx[i] / 2, cy = my[i] / 2;
    const double ddx = (mx[i + 1] - mx[i]) / (6 * h[i]), ddy = (my[i + 1] - my[i]) / (6 * h[i]);
    const double step = h[i] / samples_per_segment;
    for (int k = 0; k < samples_per_segment; ++k) {
      const double t = step * k;
      const double x = ax + bx * t + cx * std::pow(t, 2) + ddx * std::pow(t, 3);
      const double y = ay + by * t + cy * std::pow(t, 2) + ddy * std::pow(t, 3);
      out.push_back(Point{static_cast<float>(x), static_cast<float>(y)});
    }
  }
  out.push_back(p[m - 1]);
  return out;
}

void draw_thick_line(Mask& mask, int x0, int y0, int x1, int y1, int thickness) {
  const FixedPoint p0{int64_t{x0} << kShift, int64_t{y0} << kShift};
  const FixedPoint p1{int64_t{x1} << kShift, int64_t{y1} << kShift};
  const double dx = static_cast<double>(x0 - x1);
  const double dy = static_cast<double>(y1 - y0);
  const double r2 = dx * dx + dy * dy;
  const int odd = thickness & 1;
  const int64_t half = static_cast<int64_t>(thickness) << (kShift - 1);
  if (std::fabs(r2) > 2.220446049250313e-16) {
    const double r = (static_cast<double>(half) + odd * kOne * 0.5) / std::sqrt(r2);
    const int64_t ox = round_even(dy * r);
    const int64_t oy = round_even(dx * r);
    const FixedPoint quad[4] = {
        {p0.x + ox, p0.y + oy}, {p0.x - ox, p0.y - oy}, {p1.x - ox, p1.y - oy}, {p1.x + ox, p1.y + oy}};
    fill_convex(mask, quad, 4);
  }
  const int radius = static_cast<int>((half + kHalf) >> kShift);
  fill_circle(mask, x0, y0, radius);
  fill_circle(mask, x1, y1, radius);
}

// Rounds a sample to a pixel (cvRound); coordinates far outside any canvas are clamped so that the
// fixed-point arithmetic cannot overflow.
inline int to_pixel(float v) {
  constexpr float kFar = 1 << 20;
  return static_cast<int>(std::nearbyint(std::min(std::max(v, -kFar), kFar)));
}

void draw_lane(Mask& mask, const Point* pts, int n, int thickness) {
  const std::vector<Point> line = interpolate_lane(pts, n);
  for (size_t i = 0; i + 1 < line.size(); ++i) {
    draw_thick_line(mask, to_pixel(line[i].x), to_pixel(line[i].y), to_pixel(line[i + 1].x), to_pixel(line[i + 1].y),
                    thickness);
  }
}

}  // namespace culane
}  // namespace selfocus
