// CUDA launchers of the batched lane decoders. No ATen: raw device pointers, sizes and a stream. Each
// (draw, image) item is decoded by one thread with the per-image decoder of csrc/core/decoders/ (the
// same code the CPU op runs), except SCNN's, where a block shares the per-pixel box filter; the per-pixel
// work before decoding (sigmoid / softmax of the confidence outputs) runs as ATen kernels in the glue.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../core/lane_decoders.h"

namespace selfocus {
namespace cuda {

// One head's tensor: item (k, b) starts at base + k * k_stride + b * image_stride (k_stride 0: shared).
struct HeadPtr {
  const float* base;
  int64_t k_stride, image_stride;
};

// The LaneSet rows of items [first, first + count) (item = k * B + b) into xs [items, max_lanes, rows] and
// scores [items, max_lanes]; `workspace` holds `count` slices of `workspace_per_item` bytes.
struct DecodeOut {
  const float* ys;
  int rows, max_lanes;
  float *xs, *scores;
  unsigned char* workspace;
  size_t workspace_per_item;
};

cudaError_t decode_ganet(HeadPtr prob, HeadPtr pts, HeadPtr intr, int64_t B, int64_t first, int64_t count, int h,
                         int w, decode::GANetParams params, decode::InputMap map, DecodeOut out, cudaStream_t stream);

cudaError_t decode_laneatt(HeadPtr score, HeadPtr reg, const float* anchor_xs, const float* row_ys, int64_t B,
                           int64_t first, int64_t count, int anchors, int rows, decode::LaneATTParams params,
                           decode::InputMap map, DecodeOut out, cudaStream_t stream);

cudaError_t decode_bezier(HeadPtr prob, HeadPtr curves, int64_t B, int64_t first, int64_t count, int queries,
                          decode::BezierParams params, decode::InputMap map, DecodeOut out, cudaStream_t stream);

cudaError_t decode_lstr(HeadPtr prob, HeadPtr curves, const float* sample_ys, int n_rows, int64_t B, int64_t first,
                        int64_t count, int queries, decode::LSTRParams params, decode::InputMap map, DecodeOut out,
                        cudaStream_t stream);

cudaError_t decode_condlane(HeadPtr proposal, HeadPtr params, HeadPtr features, HeadPtr range, int64_t B,
                            int64_t first, int64_t count, int C, int h16, int w16, int h8, int w8,
                            decode::CondLaneParams p, decode::InputMap map, DecodeOut out, cudaStream_t stream);

cudaError_t decode_scnn(HeadPtr prob, HeadPtr exist, const int* sample_rows, int n_rows, int64_t B, int64_t first,
                        int64_t count, int channels, int h, int w, decode::SCNNParams params, decode::InputMap map,
                        DecodeOut out, cudaStream_t stream);

// The published curve families (points in frame pixels).
cudaError_t decode_lstr_published(HeadPtr prob, HeadPtr curves, int64_t B, int64_t first, int64_t count, int queries,
                                  decode::LSTRPublishedParams params, DecodeOut out, cudaStream_t stream);

cudaError_t decode_bezier_published(HeadPtr prob, HeadPtr curves, int64_t B, int64_t first, int64_t count,
                                    int queries, decode::BezierPublishedParams params, DecodeOut out,
                                    cudaStream_t stream);

// The published segmentation post-processing on maps already resized and softmaxed: `maps` holds items
// [first, first + count) contiguously ([count, channels, height, width]).
cudaError_t decode_seg_published(const float* maps, HeadPtr exist, const int* sample_rows, const double* frame_rows,
                                 int n_rows, int64_t B, int64_t first, int64_t count, int channels,
                                 decode::SegPublishedParams params, DecodeOut out, cudaStream_t stream);

// The published anchor families: CLRNet (lanes) and LaneATT (proposals); `laneatt` picks the item.
cudaError_t decode_anchor_published(bool laneatt, HeadPtr prob, HeadPtr lanes, const float* prior_ys,
                                    const double* sample_ys, int n_samples, int64_t B, int64_t first, int64_t count,
                                    int n, int points, decode::AnchorPublishedParams params, DecodeOut out,
                                    cudaStream_t stream);

// GANet's published post-processing (points in frame pixels). CondLaneNet's runs its dynamic convolutions
// with ATen's CPU kernels (the implementation's calls), so it has no kernel here.
cudaError_t decode_ganet_published(HeadPtr prob, HeadPtr offset, HeadPtr error, int64_t B, int64_t first,
                                   int64_t count, int h, int w, decode::GANetPublishedParams params, DecodeOut out,
                                   cudaStream_t stream);

}  // namespace cuda
}  // namespace selfocus
