// Modulated deformable convolution (DCNv2) as an im2col with bilinear sampling, and its gradients. Plain
// C++ usable from a CPU loop and a CUDA thread alike (no allocation, no standard containers): one call
// handles one element of the column matrix, or one sampled point for the offset/mask gradient.
//
// Layout (torchvision's / mmcv's): input [C, H, W] per image; offset [2 * G_off * kh * kw, Ho, Wo] with the
// (dy, dx) pair of kernel point k of offset group g at channels 2 * (g * kh * kw + k) and + 1; mask
// [G_off * kh * kw, Ho, Wo]; columns [C * kh * kw, Ho * Wo]. The sample of channel c at kernel point
// (i, j) and output (ho, wo) is input[c] read bilinearly at
// (ho * stride_h - pad_h + i * dil_h + dy, wo * stride_w - pad_w + j * dil_w + dx), times the mask; a
// position at or beyond one pixel outside the image reads 0, and so does every corner outside it.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define SF_DCN __host__ __device__ inline
#else
#define SF_DCN inline
#endif

namespace selfocus {
namespace dcn {

struct Geometry {
  int channels, height, width;      // input, per image
  int kh, kw;                       // kernel
  int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  int out_h, out_w;
  int offset_groups;                // channels per offset group = channels / offset_groups
};

SF_DCN float bilinear(const float* plane, int height, int width, float y, float x) {
  if (y <= -1.0f || y >= static_cast<float>(height) || x <= -1.0f || x >= static_cast<float>(width)) return 0.0f;
  const int y0 = static_cast<int>(floorf(y)), x0 = static_cast<int>(floorf(x));
  const int y1 = y0 + 1, x1 = x0 + 1;
  const float ly = y - static_cast<float>(y0), lx = x - static_cast<float>(x0);
  const float hy = 1.0f - ly, hx = 1.0f - lx;
  const float v00 = (y0 >= 0 && x0 >= 0) ? plane[y0 * width + x0] : 0.0f;
  const float v01 = (y0 >= 0 && x1 <= width - 1) ? plane[y0 * width + x1] : 0.0f;
  const float v10 = (y1 <= height - 1 && x0 >= 0) ? plane[y1 * width + x0] : 0.0f;
  const float v11 = (y1 <= height - 1 && x1 <= width - 1) ? plane[y1 * width + x1] : 0.0f;
  return hy * hx * v00 + hy * lx * v01 + ly * hx * v10 + ly * lx * v11;
}

// The sampling position and mask of (kernel point k = i * kw + j, output p = ho * Wo + wo) in offset group g.
SF_DCN void sample_point(const Geometry& g, const float* offset, const float* mask, int group, int k, int p,
                         float* y, float* x, float* m) {
  const int hw = g.out_h * g.out_w, kk = g.kh * g.kw;
  const int i = k / g.kw, j = k % g.kw, ho = p / g.out_w, wo = p % g.out_w;
  const float dy = offset[(2 * (group * kk + k)) * hw + p];
  const float dx = offset[(2 * (group * kk + k) + 1) * hw + p];
  *m = mask[(group * kk + k) * hw + p];
  *y = static_cast<float>(ho * g.stride_h - g.pad_h + i * g.dil_h) + dy;
  *x = static_cast<float>(wo * g.stride_w - g.pad_w + j * g.dil_w) + dx;
}

// columns[(c * kk + k) * hw + p] for one element index e = (c * kk + k) * hw + p.
SF_DCN void im2col_element(const Geometry& g, const float* input, const float* offset, const float* mask,
                           int64_t e, float* columns) {
  const int hw = g.out_h * g.out_w, kk = g.kh * g.kw;
  const int p = static_cast<int>(e % hw);
  const int k = static_cast<int>((e / hw) % kk);
  const int c = static_cast<int>(e / (static_cast<int64_t>(hw) * kk));
  const int group = c / (g.channels / g.offset_groups);
  float y, x, m;
  sample_point(g, offset, mask, group, k, p, &y, &x, &m);
  columns[e] = m * bilinear(input + static_cast<int64_t>(c) * g.height * g.width, g.height, g.width, y, x);
}

// The four corner weights of a bilinear read at (y, x) and their flat indices (-1 for corners outside).
SF_DCN bool corners(int height, int width, float y, float x, int* idx, float* w) {
  if (y <= -1.0f || y >= static_cast<float>(height) || x <= -1.0f || x >= static_cast<float>(width)) return false;
  const int y0 = static_cast<int>(floorf(y)), x0 = static_cast<int>(floorf(x));
  const float ly = y - static_cast<float>(y0), lx = x - static_cast<float>(x0);
  const float hy = 1.0f - ly, hx = 1.0f - lx;
  const int ys[4] = {y0, y0, y0 + 1, y0 + 1}, xs[4] = {x0, x0 + 1, x0, x0 + 1};
  const float ws[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
  for (int q = 0; q < 4; ++q) {
    const bool in = ys[q] >= 0 && ys[q] <= height - 1 && xs[q] >= 0 && xs[q] <= width - 1;
    idx[q] = in ? ys[q] * width + xs[q] : -1;
    w[q] = ws[q];
  }
  return true;
}

// d(sample)/dy and d(sample)/dx of a bilinear read (the corners outside count as zeros).
SF_DCN void bilinear_grad(const float* plane, int height, int width, float y, float x, float* gy, float* gx) {
  *gy = 0.0f;
  *gx = 0.0f;
  int idx[4];
  float w[4];
  if (!corners(height, width, y, x, idx, w)) return;
  const float v00 = idx[0] >= 0 ? plane[idx[0]] : 0.0f, v01 = idx[1] >= 0 ? plane[idx[1]] : 0.0f;
  const float v10 = idx[2] >= 0 ? plane[idx[2]] : 0.0f, v11 = idx[3] >= 0 ? plane[idx[3]] : 0.0f;
  const float ly = y - floorf(y), lx = x - floorf(x);
  *gy = (1.0f - lx) * (v10 - v00) + lx * (v11 - v01);
  *gx = (1.0f - ly) * (v01 - v00) + ly * (v11 - v10);
}

// Offset and mask gradients of one sampled point (offset group `group`, kernel point k, output p): the
// column gradients of the group's channels times the sample's derivatives.
SF_DCN void coord_grad_point(const Geometry& g, const float* input, const float* offset, const float* mask,
                             const float* grad_columns, int group, int k, int p, float* g_dy, float* g_dx,
                             float* g_mask) {
  const int hw = g.out_h * g.out_w, kk = g.kh * g.kw, per = g.channels / g.offset_groups;
  float y, x, m;
  sample_point(g, offset, mask, group, k, p, &y, &x, &m);
  float sy = 0.0f, sx = 0.0f, sm = 0.0f;
  for (int c = group * per; c < (group + 1) * per; ++c) {
    const float* plane = input + static_cast<int64_t>(c) * g.height * g.width;
    const float gc = grad_columns[(static_cast<int64_t>(c) * kk + k) * hw + p];
    float gy, gx;
    bilinear_grad(plane, g.height, g.width, y, x, &gy, &gx);
    sy += gc * m * gy;
    sx += gc * m * gx;
    sm += gc * bilinear(plane, g.height, g.width, y, x);
  }
  *g_dy = sy;
  *g_dx = sx;
  *g_mask = sm;
}

}  // namespace dcn
}  // namespace selfocus
