// Batched lane decoders of the zoo's four families (no torch). Each decoder turns one image's raw head
// outputs into lanes (points in model-input pixels with a score); `emit_lanes` then maps them to the
// original frame, resamples them on the frame's rows and writes one LaneSet row, exactly as the Python
// reference decoders (selfocus_ext/models/*.py) do.
#pragma once

#include <cstdint>
#include <vector>

namespace selfocus {
namespace decode {

// Model input <-> frame: the input covers frame rows [crop_top, height) scaled by (sx, sy).
struct InputMap {
  float sx, sy, crop_top;
  int frame_width;
};

struct Lane {
  std::vector<float> x, y;  // model-input pixels
  float score;
};

// Writes up to `max_lanes` lanes (highest score first, stable) into xs [max_lanes, rows] (NaN padded) and
// scores [max_lanes]; lanes with fewer than two frame rows inside [0, width - 1] are skipped.
void emit_lanes(const std::vector<Lane>& lanes, const InputMap& map, const float* ys, int rows, int max_lanes,
                float* xs, float* scores);

struct GANetParams {
  float threshold = 0.4f;
  float seed_dist = 1.0f;
  float cluster_dist = 5.0f;
  float assign_dist = 4.0f;
  int stride = 8;
};

// Probabilities (sigmoid, softmax) come in computed by the caller with the same kernels as the reference
// decoders use, so that thresholds and score orders agree exactly.

// prob [h, w] keypoint probabilities, pts/int [2, h, w] (x plane then y plane), in cells.
std::vector<Lane> ganet_image(const float* prob, const float* pts, const float* intr, int h, int w,
                              const GANetParams& p);

struct LaneATTParams {
  float threshold = 0.5f;
  float nms_dist = 12.0f;
  int top_k = 4;
  int width = 400;  // input width
};

// score [N] foreground probabilities, reg [N, 1 + R] (length in rows, x offsets), anchor_xs [N, R] (NaN below
// an anchor's start), row_ys [R] (input rows of the offsets).
std::vector<Lane> laneatt_image(const float* score, const float* reg, const float* anchor_xs, const float* row_ys, int n,
                                int rows, const LaneATTParams& p);

struct BezierParams {
  float threshold = 0.5f;
  int window = 9;
  int samples = 50;
  int width = 400, height = 160;  // input size
};

// prob [Q] existence probabilities, curves [Q, 4, 2] (normalised input coordinates).
std::vector<Lane> bezier_image(const float* prob, const float* curves, int queries, const BezierParams& p);

struct SCNNParams {
  float exist_threshold = 0.5f;
  float point_threshold = 0.3f;
  int blur = 9;
  int width = 400, height = 160;  // input size
};

// prob [C, h, w] per-channel probabilities at the feature resolution (background + lanes), exist [C - 1]
// probabilities, sample_rows: input rows to read. The maps are upsampled (bilinear) only where read.
std::vector<Lane> scnn_image(const float* prob, const float* exist, int channels, int h, int w, const int* sample_rows,
                             int n_rows, const SCNNParams& p);

}  // namespace decode
}  // namespace selfocus
