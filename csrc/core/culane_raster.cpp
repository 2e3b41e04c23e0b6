#include "culane_raster.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace selfocus {
namespace culane {
namespace {

constexpr int kShift = 16;  // OpenCV's XY_SHIFT: 16.16 fixed point
constexpr int64_t kOne = int64_t{1} << kShift;
constexpr int64_t kHalf = kOne >> 1;

// The official tool runs OpenCV's integer code, where huge coordinates (from NaN or far-away samples) can
// overflow sums and 32-bit casts. x86-64 wraps them; these helpers do the same without undefined
// behaviour, so that such lanes draw the same pixels here.
inline int64_t wrap_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
inline int64_t wrap_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
inline int64_t wrap_mul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}
inline int32_t wrap_int(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(v))); }
// C++ division (truncation); the two cases where x86 would trap (divide by zero, INT64_MIN / -1) cannot
// come from the geometry and are given a value instead of a crash.
inline int64_t trunc_div(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (b == -1) return wrap_sub(0, a);
  return a / b;
}

// cvRound(double) for values known to be in the int range (the quadrilateral's half-width offsets).
inline int64_t round_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

struct FixedPoint {
  int64_t x, y;
};

// (int64)(double) as x86-64 converts it (cvttsd2si): truncation, INT64_MIN for NaN and out-of-range values.
inline int64_t truncate_to_int64(double v) {
  if (!(v > -9223372036854775808.0 && v < 9223372036854775808.0)) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

// a + (double)num1 * num2 / den, the form of each of OpenCV's clipLine updates.
inline int64_t shift_along(int64_t a, int64_t num1, int64_t num2, int64_t den) {
  return wrap_add(a, truncate_to_int64(static_cast<double>(num1) * static_cast<double>(num2) /
                                       static_cast<double>(den)));
}

// OpenCV's clipLine on a width x height canvas (here the fixed-point canvas W<<16 x H<<16): Cohen-Sutherland
// with one pass over the y edges, then one over the x edges, the intersections computed in double.
bool clip_line(int64_t width, int64_t height, FixedPoint& p1, FixedPoint& p2) {
  const int64_t right = width - 1, bottom = height - 1;
  int64_t &x1 = p1.x, &y1 = p1.y, &x2 = p2.x, &y2 = p2.y;
  int c1 = (x1 < 0) + (x1 > right) * 2 + (y1 < 0) * 4 + (y1 > bottom) * 8;
  int c2 = (x2 < 0) + (x2 > right) * 2 + (y2 < 0) * 4 + (y2 > bottom) * 8;
  if ((c1 & c2) == 0 && (c1 | c2) != 0) {
    int64_t a;
    if (c1 & 12) {
      a = c1 < 8 ? 0 : bottom;
      x1 = shift_along(x1, wrap_sub(a, y1), wrap_sub(x2, x1), wrap_sub(y2, y1));
      y1 = a;
      c1 = (x1 < 0) + (x1 > right) * 2;
    }
    if (c2 & 12) {
      a = c2 < 8 ? 0 : bottom;
      x2 = shift_along(x2, wrap_sub(a, y2), wrap_sub(x2, x1), wrap_sub(y2, y1));
      y2 = a;
      c2 = (x2 < 0) + (x2 > right) * 2;
    }
    if ((c1 & c2) == 0 && (c1 | c2) != 0) {
      if (c1) {
        a = c1 == 1 ? 0 : right;
        y1 = shift_along(y1, wrap_sub(a, x1), wrap_sub(y2, y1), wrap_sub(x2, x1));
        x1 = a;
        c1 = 0;
      }
      if (c2) {
        a = c2 == 1 ? 0 : right;
        y2 = shift_along(y2, wrap_sub(a, x2), wrap_sub(y2, y1), wrap_sub(x2, x1));
        x2 = a;
        c2 = 0;
      }
    }
  }
  return (c1 | c2) == 0;
}

// The steps k in [0, count] at which a 32-bit coordinate start + k lies in [0, size): OpenCV walks every
// step and tests each pixel; only these can set one. Returns false when there are none.
bool visible_steps(int32_t start, int64_t count, int size, int64_t& k0, int64_t& k1) {
  if (start >= 0 && start < size) {
    k0 = 0;
    k1 = size - 1 - start;
  } else {
    // steps until the wrapping 32-bit coordinate reaches 0
    k0 = static_cast<int64_t>(static_cast<uint32_t>(0u - static_cast<uint32_t>(start)));
    k1 = k0 + size - 1;
  }
  k1 = std::min<int64_t>(k1, count);
  return k0 <= k1;
}

// OpenCV's Line2: a one-pixel 8-connected line between fixed-point end points, after clipping them to the
// image; the outline of the filled quadrilateral.
void fixed_line(Mask& mask, FixedPoint p1, FixedPoint p2) {
  if (!clip_line(int64_t{mask.width()} << kShift, int64_t{mask.height()} << kShift, p1, p2)) return;
  int64_t dx = wrap_sub(p2.x, p1.x);
  int64_t dy = wrap_sub(p2.y, p1.y);
  const int64_t j = dx < 0 ? -1 : 0;
  const int64_t ax = wrap_sub(dx ^ j, j);
  const int64_t i = dy < 0 ? -1 : 0;
  const int64_t ay = wrap_sub(dy ^ i, i);
  const bool x_major = ax > ay;
  int64_t step;
  int32_t count;
  if (x_major) {
    dy = wrap_sub(dy ^ j, j);
    if (j) std::swap(p1, p2);
    step = trunc_div(wrap_mul(dy, kOne), ax | 1);
    count = wrap_int(wrap_sub(p2.x, p1.x) >> kShift);
  } else {
    dx = wrap_sub(dx ^ i, i);
    if (i) std::swap(p1, p2);
    step = trunc_div(wrap_mul(dx, kOne), ay | 1);
    count = wrap_int(wrap_sub(p2.y, p1.y) >> kShift);
  }
  p1.x = wrap_add(p1.x, kHalf);
  p1.y = wrap_add(p1.y, kHalf);
  mask.point(wrap_int(wrap_add(p2.x, kHalf) >> kShift), wrap_int(wrap_add(p2.y, kHalf) >> kShift));
  if (count < 0) return;
  int64_t k0, k1;
  if (x_major) {
    const int64_t x = p1.x >> kShift;
    if (!visible_steps(wrap_int(x), count, mask.width(), k0, k1)) return;
    int64_t y = wrap_add(p1.y, wrap_mul(k0, step));
    for (int64_t k = k0; k <= k1; ++k, y = wrap_add(y, step))
      mask.point(wrap_int(x + k), wrap_int(y >> kShift));
  } else {
    const int64_t y = p1.y >> kShift;
    if (!visible_steps(wrap_int(y), count, mask.height(), k0, k1)) return;
    int64_t x = wrap_add(p1.x, wrap_mul(k0, step));
    for (int64_t k = k0; k <= k1; ++k, x = wrap_add(x, step))
      mask.point(wrap_int(x >> kShift), wrap_int(y + k));
  }
}

// OpenCV's FillConvexPoly (LINE_8, 16.16 vertices): the clipped outline, then the scanlines between the two
// edge chains that start at the top vertex. The 32-bit casts are OpenCV's.
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
  xmin = wrap_add(xmin, delta) >> kShift;
  xmax = wrap_add(xmax, delta) >> kShift;
  ymin = wrap_add(ymin, delta) >> kShift;
  ymax = wrap_add(ymax, delta) >> kShift;
  if (npts < 3 || wrap_int(xmax) < 0 || wrap_int(ymax) < 0 || wrap_int(xmin) >= mask.width() ||
      wrap_int(ymin) >= mask.height())
    return;
  ymax = std::min<int64_t>(ymax, mask.height() - 1);
  const int32_t y_last = wrap_int(ymax);

  struct Edge {
    int idx, di;
    int64_t x, dx;
    int32_t ye;
  } edge[2];
  int32_t y = wrap_int(ymin);
  edge[0].idx = edge[1].idx = imin;
  edge[0].ye = edge[1].ye = y;
  edge[0].di = 1;
  edge[1].di = npts - 1;
  edge[0].x = edge[1].x = -kOne;
  edge[0].dx = edge[1].dx = 0;
  int edges = npts;
  while (true) {
    for (int i = 0; i < 2; ++i) {
      if (y < edge[i].ye) continue;
      int idx0 = edge[i].idx;
      const int di = edge[i].di;
      int idx = idx0 + di;
      if (idx >= npts) idx -= npts;
      while (edges-- > 0) {
        const int32_t ty = wrap_int(wrap_add(v[idx].y, delta) >> kShift);
        if (ty > y) {
          const int64_t xs = v[idx0].x;
          const int64_t xe = v[idx].x;
          const int32_t rows = static_cast<int32_t>(static_cast<uint32_t>(ty) - static_cast<uint32_t>(y));
          const int32_t twice = static_cast<int32_t>(2u * static_cast<uint32_t>(rows));
          edge[i].ye = ty;
          edge[i].dx = trunc_div(wrap_add(wrap_mul(wrap_sub(xe, xs), 2), rows), twice);
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
      const int32_t x1 = wrap_int(wrap_add(edge[left].x, delta) >> kShift);
      const int32_t x2 = wrap_int(wrap_add(edge[right].x, delta) >> kShift);
      if (x2 >= 0 && x1 < mask.width()) mask.hline(y, x1, x2);
    } else {
      // Rows above the image draw nothing; jump to the next row where an edge changes or the image starts.
      const int64_t next = std::min<int64_t>({edge[0].ye, edge[1].ye, 0, int64_t{y_last} + 1});
      const int64_t skip = std::max<int64_t>(next - y - 1, 0);
      edge[0].x = wrap_add(edge[0].x, wrap_mul(edge[0].dx, skip));
      edge[1].x = wrap_add(edge[1].x, wrap_mul(edge[1].dx, skip));
      y = static_cast<int32_t>(y + skip);
    }
    edge[0].x = wrap_add(edge[0].x, edge[0].dx);
    edge[1].x = wrap_add(edge[1].x, edge[1].dx);
    if (y >= y_last) break;  // OpenCV's `while (++y <= ymax)`; y < y_last < the height here, so ++y cannot wrap
    ++y;
  }
}

// A filled circle by the midpoint algorithm (OpenCV's Circle with fill); the centre may lie anywhere in the
// int range.
void fill_circle(Mask& mask, int64_t cx, int64_t cy, int radius) {
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

int32_t round_to_pixel(float v) {
  if (!(v >= -2147483648.0f && v < 2147483648.0f)) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(std::nearbyint(v));
}

Mask::Mask(int width, int height)
    : width_(width),
      height_(height),
      words_((width + 63) / 64),
      row_min_(height),
      row_max_(-1),
      bits_(static_cast<size_t>(words_) * static_cast<size_t>(height), 0) {}

void Mask::hline(int64_t y, int64_t x0, int64_t x1) {
  if (y < 0 || y >= height_) return;
  x0 = std::max<int64_t>(x0, 0);
  x1 = std::min<int64_t>(x1, width_ - 1);
  if (x1 < x0) return;
  const int r = static_cast<int>(y);
  row_min_ = std::min(row_min_, r);
  row_max_ = std::max(row_max_, r);
  uint64_t* row = bits_.data() + static_cast<size_t>(r) * words_;
  const int w0 = static_cast<int>(x0 >> 6), w1 = static_cast<int>(x1 >> 6);
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

void Mask::point(int64_t x, int64_t y) {
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

std::vector<Point> interpolate_lane(const Point* p, int n, int samples_per_segment) {
  if (n < 2) return {};
  if (n == 2) return {p[0], p[1]};
  // The official spline's arithmetic, operation for operation: coordinate differences in float32 (its
  // points are cv::Point2f), everything else in double. A zero chord (repeated point) divides by zero and
  // the NaN spreads, as it does there.
  auto dx = [p](int i) { return static_cast<double>(p[i + 1].x - p[i].x); };
  auto dy = [p](int i) { return static_cast<double>(p[i + 1].y - p[i].y); };
  std::vector<double> h(n - 1), a(n - 2), b(n - 2), c(n - 2), rx(n - 2), ry(n - 2), mx(n), my(n);
  for (int i = 0; i < n - 1; ++i) h[i] = std::sqrt(std::pow(dx(i), 2) + std::pow(dy(i), 2));
  for (int i = 0; i < n - 2; ++i) {
    a[i] = h[i];
    b[i] = 2 * (h[i] + h[i + 1]);
    c[i] = h[i + 1];
    rx[i] = 6 * (dx(i + 1) / h[i + 1] - dx(i) / h[i]);
    ry[i] = 6 * (dy(i + 1) / h[i + 1] - dy(i) / h[i]);
  }
  // Thomas algorithm for the interior second derivatives (natural end conditions).
  c[0] = c[0] / b[0];
  rx[0] = rx[0] / b[0];
  ry[0] = ry[0] / b[0];
  for (int i = 1; i < n - 2; ++i) {
    const double den = b[i] - a[i] * c[i - 1];
    c[i] = c[i] / den;
    rx[i] = (rx[i] - a[i] * rx[i - 1]) / den;
    ry[i] = (ry[i] - a[i] * ry[i - 1]) / den;
  }
  mx[n - 2] = rx[n - 3];
  my[n - 2] = ry[n - 3];
  for (int i = n - 4; i >= 0; --i) {
    mx[i + 1] = rx[i] - c[i] * mx[i + 2];
    my[i + 1] = ry[i] - c[i] * my[i + 2];
  }
  mx[0] = mx[n - 1] = my[0] = my[n - 1] = 0;

  std::vector<Point> out;
  out.reserve(static_cast<size_t>((n - 1) * samples_per_segment + 1));
  for (int i = 0; i < n - 1; ++i) {
    const double ax = p[i].x, ay = p[i].y;
    const double bx = dx(i) / h[i] - (2 * h[i] * mx[i] + h[i] * mx[i + 1]) / 6;
    const double by = dy(i) / h[i] - (2 * h[i] * my[i] + h[i] * my[i + 1]) / 6;
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
  out.push_back(p[n - 1]);
  return out;
}

namespace {

// One segment of cv::line's thick line: the quadrilateral (when the end points differ) and the end caps
// selected by `caps` (bit 0: at (x0, y0), bit 1: at (x1, y1)), as ThickLine's flags do.
void thick_segment(Mask& mask, int32_t x0, int32_t y0, int32_t x1, int32_t y1, int thickness, int caps) {
  const FixedPoint p0{int64_t{x0} * kOne, int64_t{y0} * kOne};
  const FixedPoint p1{int64_t{x1} * kOne, int64_t{y1} * kOne};
  const double dx = static_cast<double>(p0.x - p1.x) / static_cast<double>(kOne);
  const double dy = static_cast<double>(p1.y - p0.y) / static_cast<double>(kOne);
  const double r2 = dx * dx + dy * dy;
  const int odd = thickness & 1;
  const int64_t half = static_cast<int64_t>(thickness) << (kShift - 1);
  if (std::fabs(r2) > std::numeric_limits<double>::epsilon()) {
    const double r = (static_cast<double>(half) + odd * kOne * 0.5) / std::sqrt(r2);
    const int64_t ox = round_even(dy * r);
    const int64_t oy = round_even(dx * r);
    const FixedPoint quad[4] = {
        {p0.x + ox, p0.y + oy}, {p0.x - ox, p0.y - oy}, {p1.x - ox, p1.y - oy}, {p1.x + ox, p1.y + oy}};
    fill_convex(mask, quad, 4);
  }
  const int radius = static_cast<int>((half + kHalf) >> kShift);
  if (caps & 1) fill_circle(mask, x0, y0, radius);
  if (caps & 2) fill_circle(mask, x1, y1, radius);
}

}  // namespace

void draw_thick_line(Mask& mask, int32_t x0, int32_t y0, int32_t x1, int32_t y1, int thickness) {
  thick_segment(mask, x0, y0, x1, y1, thickness, 3);
}

void draw_lane(Mask& mask, const Point* pts, int n, int thickness) {
  const std::vector<Point> line = interpolate_lane(pts, n);
  if (line.size() < 2) return;
  // The mask is a union, so what a segment would draw again is skipped: consecutive segments share a cap,
  // and the 50 samples per spline segment often round to the same pixel (a zero-length segment is its cap).
  int32_t px = round_to_pixel(line[0].x), py = round_to_pixel(line[0].y);
  bool cap_drawn = false;  // the cap at (px, py)
  for (size_t i = 1; i < line.size(); ++i) {
    const int32_t x = round_to_pixel(line[i].x), y = round_to_pixel(line[i].y);
    if (x == px && y == py) {
      if (!cap_drawn) thick_segment(mask, px, py, px, py, thickness, 1);
      cap_drawn = true;
      continue;
    }
    thick_segment(mask, px, py, x, y, thickness, cap_drawn ? 2 : 3);
    px = x;
    py = y;
    cap_drawn = true;
  }
}

}  // namespace culane
}  // namespace selfocus
