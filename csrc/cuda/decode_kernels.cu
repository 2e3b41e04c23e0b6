// CUDA kernels of the batched lane decoders: one thread per (draw, image) item runs the per-image decoder
// of csrc/core/lane_decoders.h in its own workspace slice. Items are independent, and the grouping steps
// (clustering keypoints, line NMS, local maxima) are sequential per image, so a thread per image is the
// unit of parallelism; the Monte-Carlo batches (K x B items) keep the device busy.
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

__global__ void scnn_kernel(HeadPtr prob, HeadPtr exist, const int* sample_rows, int n_rows, int64_t B, int64_t first,
                            int64_t count, int channels, int h, int w, decode::SCNNParams p, decode::InputMap map,
                            DecodeOut o) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < count;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t item = first + t;
    decode::scnn_item(at_item(prob, item, B), at_item(exist, item, B), channels, h, w, sample_rows, n_rows,
                                p, map, o.ys, o.rows, o.max_lanes, o.xs + item * o.max_lanes * o.rows,
                                o.scores + item * o.max_lanes, slice(o, t));
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

cudaError_t decode_scnn(HeadPtr prob, HeadPtr exist, const int* sample_rows, int n_rows, int64_t B, int64_t first,
                        int64_t count, int channels, int h, int w, decode::SCNNParams params, decode::InputMap map,
                        DecodeOut out, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  scnn_kernel<<<blocks_for(count), kThreads, 0, stream>>>(prob, exist, sample_rows, n_rows, B, first, count, channels,
                                                          h, w, params, map, out);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace selfocus
