// CUDA kernels of the batched lane decoders: one thread per (draw, image) item runs the per-image decoder
// of csrc/core/decoders/ in its own workspace slice. Items are independent, and the grouping steps
// (clustering keypoints, line NMS, local maxima) are sequential per image, so a thread per image is the
// unit of parallelism; the Monte-Carlo batches (K x B items) keep the device busy. SCNN's decoder is the
// exception: its full-resolution box filter is per-pixel work, so a block decodes one item.
#include <cuda_runtime.h>

#include "decode_kernels.cuh"

namespace selfocus {
namespace cuda {
namespace {

constexpr int kThreads = 64;

__device__ __forceinline__ const float* at_item(const HeadPtr& h, int64_t item, int64_t B) {
  return h.base + (item / B) * h.k_stride + (item % B) * h.image_stride;
}

__device__ __forceinline__ unsigned char* slice(const DecodeOut& o, int64_t local) {
  return o.workspace + local * o.workspace_per_item;
}

__global__ void ganet_kernel(HeadPtr prob, HeadPtr pts, HeadPtr intr, int64_t B, int64_t first, int64_t count, int h,
                             int w, decode::GANetParams p, decode::InputMap map, DecodeOut o) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    decode::ganet_item(at_item(prob, item, B), at_item(pts, item, B), at_item(intr, item, B), h, w, p, map,
                                 o.ys, o.rows, o.max_lanes, o.xs + item * o.max_lanes * o.rows,
                                 o.scores + item * o.max_lanes, slice(o, t));
  }
}

__global__ void laneatt_kernel(HeadPtr score, HeadPtr reg, const float* anchor_xs, const float* row_ys, int64_t B,
                               int64_t first, int64_t count, int anchors, int rows, decode::LaneATTParams p,
                               decode::InputMap map, DecodeOut o) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    decode::laneatt_item(at_item(score, item, B), at_item(reg, item, B), anchor_xs, row_ys, anchors, rows, p,
                                   map, o.ys, o.rows, o.max_lanes, o.xs + item * o.max_lanes * o.rows,
                                   o.scores + item * o.max_lanes, slice(o, t));
  }
}

__global__ void bezier_kernel(HeadPtr prob, HeadPtr curves, int64_t B, int64_t first, int64_t count, int queries,
                              decode::BezierParams p, decode::InputMap map, DecodeOut o) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    decode::bezier_item(at_item(prob, item, B), at_item(curves, item, B), queries, p, map, o.ys, o.rows,
                                  o.max_lanes, o.xs + item * o.max_lanes * o.rows, o.scores + item * o.max_lanes,
                                  slice(o, t));
  }
}

__global__ void lstr_published_kernel(HeadPtr prob, HeadPtr curves, int64_t B, int64_t first, int64_t count,
                                      int queries, decode::LSTRPublishedParams p, DecodeOut o) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    decode::lstr_published_item(at_item(prob, item, B), at_item(curves, item, B), queries, p, o.ys, o.rows,
                                o.max_lanes, o.xs + item * o.max_lanes * o.rows, o.scores + item * o.max_lanes,
                                slice(o, t));
  }
}

__global__ void bezier_published_kernel(HeadPtr prob, HeadPtr curves, int64_t B, int64_t first, int64_t count,
                                        int queries, decode::BezierPublishedParams p, DecodeOut o) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    decode::bezier_published_item(at_item(prob, item, B), at_item(curves, item, B), queries, p, o.ys, o.rows,
                                  o.max_lanes, o.xs + item * o.max_lanes * o.rows, o.scores + item * o.max_lanes,
                                  slice(o, t));
  }
}

__global__ void seg_published_kernel(const float* maps, HeadPtr exist, const int* sample_rows,
                                     const double* frame_rows, int n_rows, int64_t B, int64_t first, int64_t count,
                                     int channels, decode::SegPublishedParams p, DecodeOut o) {
  const int64_t plane = static_cast<int64_t>(channels) * p.height * p.width;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    decode::seg_published_item(maps + t * plane, at_item(exist, item, B), channels, sample_rows, frame_rows, n_rows,
                               p, o.ys, o.rows, o.max_lanes, o.xs + item * o.max_lanes * o.rows,
                               o.scores + item * o.max_lanes, slice(o, t));
  }
}

__global__ void ganet_published_kernel(HeadPtr prob, HeadPtr offset, HeadPtr error, int64_t B, int64_t first,
                                       int64_t count, int h, int w, decode::GANetPublishedParams p, DecodeOut o) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    decode::ganet_published_item(at_item(prob, item, B), at_item(offset, item, B), at_item(error, item, B), h, w, p,
                                 o.ys, o.rows, o.max_lanes, o.xs + item * o.max_lanes * o.rows,
                                 o.scores + item * o.max_lanes, slice(o, t));
  }
}

__global__ void anchor_published_kernel(bool laneatt, HeadPtr prob, HeadPtr lanes, const float* prior_ys,
                                        const double* sample_ys, int n_samples, int64_t B, int64_t first,
                                        int64_t count, int n, int points, decode::AnchorPublishedParams p,
                                        DecodeOut o) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    float* xs = o.xs + item * o.max_lanes * o.rows;
    float* sc = o.scores + item * o.max_lanes;
    if (laneatt) {
      decode::laneatt_published_item(at_item(prob, item, B), at_item(lanes, item, B), n, points, prior_ys, sample_ys,
                                     n_samples, p, o.ys, o.rows, o.max_lanes, xs, sc, slice(o, t));
    } else {
      decode::clrnet_published_item(at_item(prob, item, B), at_item(lanes, item, B), n, points, prior_ys, sample_ys,
                                    n_samples, p, o.ys, o.rows, o.max_lanes, xs, sc, slice(o, t));
    }
  }
}

__global__ void lstr_kernel(HeadPtr prob, HeadPtr curves, const float* sample_ys, int n_rows, int64_t B, int64_t first,
                            int64_t count, int queries, decode::LSTRParams p, decode::InputMap map, DecodeOut o) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    decode::lstr_item(at_item(prob, item, B), at_item(curves, item, B), queries, sample_ys, n_rows, p, map, o.ys,
                      o.rows, o.max_lanes, o.xs + item * o.max_lanes * o.rows, o.scores + item * o.max_lanes,
                      slice(o, t));
  }
}

__global__ void condlane_kernel(HeadPtr proposal, HeadPtr params, HeadPtr features, HeadPtr range, int64_t B,
                                int64_t first, int64_t count, int C, int h16, int w16, int h8, int w8,
                                decode::CondLaneParams p, decode::InputMap map, DecodeOut o) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    decode::condlane_item(at_item(proposal, item, B), at_item(params, item, B), at_item(features, item, B),
                          at_item(range, item, B), C, h16, w16, h8, w8, p, map, o.ys, o.rows, o.max_lanes,
                          o.xs + item * o.max_lanes * o.rows, o.scores + item * o.max_lanes, slice(o, t));
  }
}

// SCNN / RESA: one block per item. The per-pixel stages (bilinear upsampling, the box filter's running sums,
// the per-row arg-max) are spread over the block's threads; every value is computed by the same operations
// in the same order as decode::scnn_item (one thread per padded row for the horizontal running sums, one per
// column for the vertical running sum carried down from the top), so the blurred maps are bit-identical to
// the CPU op's and the chosen columns agree on plateaus. Grouping the points into lanes is thread 0's.
constexpr int kSCNNThreads = 256;

__global__ void scnn_kernel(HeadPtr prob_h, HeadPtr exist_h, const int* sample_rows, int n_rows, int64_t B,
                            int64_t first, int64_t count, int channels, int h, int w, decode::SCNNParams p,
                            decode::InputMap map, DecodeOut o) {
  const int tid = threadIdx.x, nt = blockDim.x;
  const int W = p.width, H = p.height, k = p.blur, half = p.blur / 2;
  const double norm = 1.0 / (static_cast<double>(k) * k);
  int last_row = -1;
  for (int i = 0; i < n_rows; ++i) last_row = sample_rows[i] > last_row ? sample_rows[i] : last_row;
  const int needed = last_row + k;  // padded rows -half .. last_row + half
  for (int64_t t = blockIdx.x; t < count; t += gridDim.x) {
    const int64_t item = first + t;
    const float* prob = at_item(prob_h, item, B);
    const float* exist = at_item(exist_h, item, B);
    decode::Carver c{slice(o, t), 0};
    decode::SCNNScratch s = decode::SCNNScratch::carve(c, channels, h, n_rows, p);
    for (int x = tid; x < W; x += nt) decode::bilinear_tap(w, W, x, &s.tx[x].i0, &s.tx[x].i1, &s.tx[x].w0, &s.tx[x].w1);
    for (int y = tid; y < H; y += nt) {
      decode::bilinear_tap(h, H, y, &s.ty[y].i0, &s.ty[y].i1, &s.ty[y].w0, &s.ty[y].w1);
      s.have[y] = 0;  // here: whether row y is a sample row
    }
    __syncthreads();
    for (int i = tid; i < n_rows; i += nt) s.have[sample_rows[i]] = 1;
    int n_lanes = 0, used = 0;  // thread 0's
    const int64_t plane = static_cast<int64_t>(h) * w;
    for (int lane_c = 1; lane_c < channels; ++lane_c) {
      const float e = exist[lane_c - 1];
      if (!(e > p.exist_threshold)) continue;  // the same branch for the whole block
      const float* pc = prob + static_cast<int64_t>(lane_c) * plane;
      for (int64_t i = tid; i < static_cast<int64_t>(h) * W; i += nt) {
        const int64_t sr = i / W;
        const decode::Tap a = s.tx[i % W];
        const float* src = pc + sr * w;
        s.hrows[i] = a.w0 * src[a.i0] + a.w1 * src[a.i1];
      }
      __syncthreads();
      for (int64_t i = tid; i < static_cast<int64_t>(H) * W; i += nt) {
        const decode::Tap a = s.ty[i / W];
        const int64_t x = i % W;
        const float* top = s.hrows + a.i0 * static_cast<int64_t>(W);
        const float* bot = s.hrows + a.i1 * static_cast<int64_t>(W);
        s.up[i] = a.w0 * top[x] + a.w1 * bot[x];
      }
      __syncthreads();
      // boxes row r holds the horizontal box sums of padded row r - half (reflect-101 rows and columns)
      for (int r = tid; r < needed; r += nt) {
        const float* src = s.up + static_cast<int64_t>(decode::reflect101(r - half, H)) * W;
        double* out = s.boxes + static_cast<int64_t>(r) * W;
        double run = 0.0;
        for (int i = 0; i < k; ++i) run += static_cast<double>(src[decode::reflect101(i - half, W)]);
        out[0] = run;
        for (int x = 1; x < W; ++x) {
          run += static_cast<double>(src[decode::reflect101(x + k - 1 - half, W)]) -
                 static_cast<double>(src[decode::reflect101(x - 1 - half, W)]);
          out[x] = run;
        }
      }
      __syncthreads();
      // vertical running sums per column; the blurred sample rows go to s.up (no longer read)
      for (int x = tid; x < W; x += nt) {
        double col = 0.0;
        for (int r = 0; r < k - 1; ++r) col += s.boxes[static_cast<int64_t>(r) * W + x];
        for (int y = 0; y <= last_row; ++y) {
          const double entering = s.boxes[static_cast<int64_t>(y + k - 1) * W + x];
          const double leaving = s.boxes[static_cast<int64_t>(y) * W + x];
          if (!s.have[y]) {
            col = (col + entering) - leaving;
            continue;
          }
          const double sum = col + entering;
          s.up[static_cast<int64_t>(y) * W + x] = static_cast<float>(sum * norm);
          col = sum - leaving;
        }
      }
      __syncthreads();
      for (int i = tid; i < n_rows; i += nt) {
        const float* row = s.up + static_cast<int64_t>(sample_rows[i]) * W;
        float best_v = -INFINITY;
        for (int x = 0; x < W; ++x) best_v = row[x] > best_v ? row[x] : best_v;
        const bool found = best_v > p.point_threshold;
        s.sample_x[i] = found ? static_cast<float>(decode::scnn_leftmost_near(row, best_v)) : -1.0f;
      }
      __syncthreads();
      if (tid == 0) decode::scnn_add_lane(s, sample_rows, n_rows, e, &n_lanes, &used);
      __syncthreads();  // the next lane channel overwrites hrows, up and sample_x
    }
    if (tid == 0)
      decode::emit(s.spans, n_lanes, s.px, s.py, map, o.ys, o.rows, o.max_lanes, o.xs + item * o.max_lanes * o.rows,
                   o.scores + item * o.max_lanes, s.emit);
    __syncthreads();
  }
}

unsigned blocks_for(int64_t count) {
  int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks > 65535 ? 65535 : (blocks < 1 ? 1 : blocks));
}

}  // namespace

cudaError_t decode_ganet(HeadPtr prob, HeadPtr pts, HeadPtr intr, int64_t B, int64_t first, int64_t count, int h,
                         int w, decode::GANetParams params, decode::InputMap map, DecodeOut out, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  ganet_kernel<<<blocks_for(count), kThreads, 0, stream>>>(prob, pts, intr, B, first, count, h, w, params, map, out);
  return cudaGetLastError();
}

cudaError_t decode_laneatt(HeadPtr score, HeadPtr reg, const float* anchor_xs, const float* row_ys, int64_t B,
                           int64_t first, int64_t count, int anchors, int rows, decode::LaneATTParams params,
                           decode::InputMap map, DecodeOut out, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  laneatt_kernel<<<blocks_for(count), kThreads, 0, stream>>>(score, reg, anchor_xs, row_ys, B, first, count, anchors,
                                                             rows, params, map, out);
  return cudaGetLastError();
}

cudaError_t decode_bezier(HeadPtr prob, HeadPtr curves, int64_t B, int64_t first, int64_t count, int queries,
                          decode::BezierParams params, decode::InputMap map, DecodeOut out, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  bezier_kernel<<<blocks_for(count), kThreads, 0, stream>>>(prob, curves, B, first, count, queries, params, map, out);
  return cudaGetLastError();
}

cudaError_t decode_lstr(HeadPtr prob, HeadPtr curves, const float* sample_ys, int n_rows, int64_t B, int64_t first,
                        int64_t count, int queries, decode::LSTRParams params, decode::InputMap map, DecodeOut out,
                        cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  lstr_kernel<<<blocks_for(count), kThreads, 0, stream>>>(prob, curves, sample_ys, n_rows, B, first, count, queries,
                                                          params, map, out);
  return cudaGetLastError();
}

cudaError_t decode_condlane(HeadPtr proposal, HeadPtr params, HeadPtr features, HeadPtr range, int64_t B,
                            int64_t first, int64_t count, int C, int h16, int w16, int h8, int w8,
                            decode::CondLaneParams p, decode::InputMap map, DecodeOut out, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  condlane_kernel<<<blocks_for(count), kThreads, 0, stream>>>(proposal, params, features, range, B, first, count, C,
                                                              h16, w16, h8, w8, p, map, out);
  return cudaGetLastError();
}

cudaError_t decode_scnn(HeadPtr prob, HeadPtr exist, const int* sample_rows, int n_rows, int64_t B, int64_t first,
                        int64_t count, int channels, int h, int w, decode::SCNNParams params, decode::InputMap map,
                        DecodeOut out, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  const unsigned blocks = static_cast<unsigned>(count < 65535 ? count : 65535);
  scnn_kernel<<<blocks, kSCNNThreads, 0, stream>>>(prob, exist, sample_rows, n_rows, B, first, count, channels, h, w,
                                                   params, map, out);
  return cudaGetLastError();
}

cudaError_t decode_lstr_published(HeadPtr prob, HeadPtr curves, int64_t B, int64_t first, int64_t count, int queries,
                                  decode::LSTRPublishedParams params, DecodeOut out, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  lstr_published_kernel<<<blocks_for(count), kThreads, 0, stream>>>(prob, curves, B, first, count, queries, params,
                                                                    out);
  return cudaGetLastError();
}

cudaError_t decode_bezier_published(HeadPtr prob, HeadPtr curves, int64_t B, int64_t first, int64_t count,
                                    int queries, decode::BezierPublishedParams params, DecodeOut out,
                                    cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  bezier_published_kernel<<<blocks_for(count), kThreads, 0, stream>>>(prob, curves, B, first, count, queries, params,
                                                                      out);
  return cudaGetLastError();
}

cudaError_t decode_seg_published(const float* maps, HeadPtr exist, const int* sample_rows, const double* frame_rows,
                                 int n_rows, int64_t B, int64_t first, int64_t count, int channels,
                                 decode::SegPublishedParams params, DecodeOut out, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  seg_published_kernel<<<blocks_for(count), kThreads, 0, stream>>>(maps, exist, sample_rows, frame_rows, n_rows, B,
                                                                   first, count, channels, params, out);
  return cudaGetLastError();
}

cudaError_t decode_anchor_published(bool laneatt, HeadPtr prob, HeadPtr lanes, const float* prior_ys,
                                    const double* sample_ys, int n_samples, int64_t B, int64_t first, int64_t count,
                                    int n, int points, decode::AnchorPublishedParams params, DecodeOut out,
                                    cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  anchor_published_kernel<<<blocks_for(count), kThreads, 0, stream>>>(laneatt, prob, lanes, prior_ys, sample_ys,
                                                                      n_samples, B, first, count, n, points, params,
                                                                      out);
  return cudaGetLastError();
}

cudaError_t decode_ganet_published(HeadPtr prob, HeadPtr offset, HeadPtr error, int64_t B, int64_t first,
                                   int64_t count, int h, int w, decode::GANetPublishedParams params, DecodeOut out,
                                   cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  ganet_published_kernel<<<blocks_for(count), kThreads, 0, stream>>>(prob, offset, error, B, first, count, h, w,
                                                                      params, out);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace selfocus
