// CPU loops of the fused quantization operators over raw float32 arrays (no torch). Each function handles
// the flat element range [begin, end) of contiguous arrays, so a caller can split the work across threads;
// results do not depend on how the range is split.
#pragma once

#include <cstdint>

namespace selfocus {
namespace core {

// Layout of a per-channel tensor seen as [outer, channels, inner]: element i belongs to channel
// (i / inner) % channels. Per-tensor quantization is channels = 1, inner = numel.
struct ChannelLayout {
  int64_t channels;
  int64_t inner;
};

struct IntFormat {
  int bits;
  bool is_signed;
};

void fake_quant_forward(const float* x, const float* scale, float* y, int64_t begin, int64_t end,
                        ChannelLayout layout, IntFormat fmt);

void fake_quant_backward(const float* grad_y, const float* x, const float* scale, float* grad_x,
                         int64_t begin, int64_t end, ChannelLayout layout, IntFormat fmt);

// AdaRound, signed `bits`, scale per output channel (layout.channels = w.size(0)).
void adaround_forward(const float* w, const float* v, const float* scale, float* y, int64_t begin,
                      int64_t end, ChannelLayout layout, int bits, bool hard);

// Soft AdaRound value and its slope dy/dv in one pass: the backward is then grad * slope, without a
// second sigmoid (on the CPU the sigmoid, not memory, bounds the soft forward).
void adaround_forward_slope(const float* w, const float* v, const float* scale, float* y, float* slope,
                            int64_t begin, int64_t end, ChannelLayout layout, int bits);
// grad_v = grad_y * slope on [begin, end) (the backward of adaround_forward_slope).
void adaround_slope_backward(const float* grad_y, const float* slope, float* grad_v, int64_t begin, int64_t end);
void adaround_backward(const float* grad_y, const float* w, const float* v, const float* scale,
                       float* grad_v, int64_t begin, int64_t end, ChannelLayout layout, int bits);

void adaround_init(const float* w, const float* scale, float* v, int64_t begin, int64_t end,
                   ChannelLayout layout);

// Sum of 1 - |2h(v)-1|^beta over [begin, end); writes d/dv to grad_v when it is not null.
double adaround_regularizer(const float* v, float beta, float* grad_v, int64_t begin, int64_t end);

// LSQ fake quant with QDrop: element i is quantized when its Philox draw (seed, i) is below keep_prob,
// else passed through.
void act_quant_forward(const float* x, float step, float* y, int64_t begin, int64_t end, IntFormat fmt,
                       float keep_prob, uint64_t seed);

// Writes grad_x and returns this range's sum of step-gradient terms (before grad_scale).
double act_quant_backward(const float* grad_y, const float* x, float step, float* grad_x, int64_t begin,
                          int64_t end, IntFormat fmt, float keep_prob, uint64_t seed);

// The QDrop keep mask itself (1 = quantized), for inspection and tests.
void qdrop_keep_mask(uint8_t* keep, int64_t begin, int64_t end, float keep_prob, uint64_t seed);

}  // namespace core
}  // namespace selfocus
