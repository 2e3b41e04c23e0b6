// CUDA launchers of the fused quantization operators. No ATen: arguments are raw device pointers, sizes
// and a stream, so this compiles with nvcc alone. Element arrays are contiguous, of `dtype`; scale and
// step arrays are float32 on the device (read inside the kernels, never copied to the host).
// Every launcher returns the launch's cudaError_t.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../core/quant_cpu.h"

namespace selfocus {
namespace cuda {

enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

using core::ChannelLayout;
using core::IntFormat;

// Size of the double-precision scratch buffer that the reducing launchers need for n elements.
int64_t reduction_scratch_size(int64_t n);

cudaError_t fake_quant_forward(const void* x, const float* scale, void* y, int64_t n, ChannelLayout layout,
                               IntFormat fmt, DType dtype, cudaStream_t stream);

cudaError_t fake_quant_backward(const void* grad_y, const void* x, const float* scale, void* grad_x,
                                int64_t n, ChannelLayout layout, IntFormat fmt, DType dtype,
                                cudaStream_t stream);

cudaError_t adaround_forward(const void* w, const void* v, const float* scale, void* y, int64_t n,
                             ChannelLayout layout, int bits, bool hard, DType dtype, cudaStream_t stream);

cudaError_t adaround_backward(const void* grad_y, const void* w, const void* v, const float* scale,
                              void* grad_v, int64_t n, ChannelLayout layout, int bits, DType dtype,
                              cudaStream_t stream);

cudaError_t adaround_init(const void* w, const float* scale, void* v, int64_t n, ChannelLayout layout,
                          DType dtype, cudaStream_t stream);

// Writes the sum to *out (float32, device) and d/dv to grad_v unless it is null.
cudaError_t adaround_regularizer(const void* v, float beta, void* grad_v, float* out, double* scratch,
                                 int64_t n, DType dtype, cudaStream_t stream);

cudaError_t act_quant_forward(const void* x, const float* step, void* y, int64_t n, IntFormat fmt,
                              float keep_prob, uint64_t seed, DType dtype, cudaStream_t stream);

// Writes grad_x, and the step gradient (times grad_scale) to *grad_step (float32, device).
cudaError_t act_quant_backward(const void* grad_y, const void* x, const float* step, void* grad_x,
                               float* grad_step, double* scratch, int64_t n, IntFormat fmt, float keep_prob,
                               uint64_t seed, float grad_scale, DType dtype, cudaStream_t stream);

}  // namespace cuda
}  // namespace selfocus
