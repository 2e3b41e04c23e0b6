// CUDA kernels of the fused quantization operators. The per-element math is qmath (csrc/core/quant_math.h),
// shared with the CPU loops; this file only maps it over memory. Each thread owns groups of four
// consecutive elements: one 16-byte (float32) or 8-byte (half types) load per input, and one Philox call
// per group for QDrop's mask, which is exactly the CPU path's element-to-word assignment.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "../core/quant_math.h"
#include "quant_kernels.cuh"

namespace selfocus {
namespace cuda {
namespace {

namespace qm = selfocus::qmath;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;
constexpr int64_t kMaxReduceBlocks = 1024;

template <typename T>
struct Elem;

template <>
struct Elem<float> {
  using Vec4 = float4;
  __device__ static float to_float(float v) { return v; }
  __device__ static float from_float(float v) { return v; }
};

template <>
struct Elem<__half> {
  using Vec4 = uint2;
  __device__ static float to_float(__half v) { return __half2float(v); }
  __device__ static __half from_float(float v) { return __float2half_rn(v); }
};

template <>
struct Elem<__nv_bfloat16> {
  using Vec4 = uint2;
  __device__ static float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  __device__ static __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
};

// Loads elements [first, first + count) (count <= 4) as float; kVec means every array is aligned to
// the vector width, so a full group is one vector load.
template <typename T, bool kVec>
__device__ __forceinline__ void load4(const T* p, int64_t first, int count, float (&out)[4]) {
  if (kVec && count == 4) {
    const typename Elem<T>::Vec4 raw = *reinterpret_cast<const typename Elem<T>::Vec4*>(p + first);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int j = 0; j < 4; ++j) out[j] = Elem<T>::to_float(e[j]);
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) out[j] = j < count ? Elem<T>::to_float(p[first + j]) : 0.0f;
  }
}

template <typename T, bool kVec>
__device__ __forceinline__ void store4(T* p, int64_t first, int count, const float (&in)[4]) {
  if (kVec && count == 4) {
    typename Elem<T>::Vec4 raw;
    T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int j = 0; j < 4; ++j) e[j] = Elem<T>::from_float(in[j]);
    *reinterpret_cast<typename Elem<T>::Vec4*>(p + first) = raw;
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j)
      if (j < count) p[first + j] = Elem<T>::from_float(in[j]);
  }
}

template <typename T, int kN>
struct Inputs {
  const T* p[kN];
};

// The scale of each element of a group. When the channel stretch (inner) is a multiple of 4 a group
// never straddles two channels, so one lookup serves all four.
__device__ __forceinline__ void group_scales(const float* scale, ChannelLayout layout, int64_t first,
                                             float (&s)[4], float (&inv)[4]) {
  if (layout.channels == 1) {
    const float s0 = scale[0];
    const float i0 = 1.0f / s0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      s[j] = s0;
      inv[j] = i0;
    }
  } else if (layout.inner % 4 == 0) {
    const float s0 = scale[(first / layout.inner) % layout.channels];
    const float i0 = 1.0f / s0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      s[j] = s0;
      inv[j] = i0;
    }
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      s[j] = scale[((first + j) / layout.inner) % layout.channels];
      inv[j] = 1.0f / s[j];
    }
  }
}

// Calls fn(g, first, count) for every group g of four elements (first = 4g, count <= 4 at the tail) that
// this thread owns in a grid-stride loop.
template <typename Fn>
__device__ __forceinline__ void for_each_group(int64_t n, Fn&& fn) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t first = 4 * g;
    fn(g, first, static_cast<int>(n - first < 4 ? n - first : 4));
  }
}

// out[i] = op(inputs at i, scale, 1/scale) for every element, scale chosen by channel.
template <typename T, bool kVec, int kN, typename Op>
__global__ void channel_map_kernel(Inputs<T, kN> in, T* out, int64_t n, const float* scale,
                                   ChannelLayout layout, Op op) {
  for_each_group(n, [&](int64_t, int64_t first, int count) {
    float a[kN][4];
#pragma unroll
    for (int k = 0; k < kN; ++k) load4<T, kVec>(in.p[k], first, count, a[k]);
    float s[4], inv[4];
    group_scales(scale, layout, first, s, inv);
    float r[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float v[kN];
#pragma unroll
      for (int k = 0; k < kN; ++k) v[k] = a[k][j];
      r[j] = op(v, s[j], inv[j]);
    }
    store4<T, kVec>(out, first, count, r);
  });
}

struct FakeQuantFwd {
  qm::IntRange r;
  __device__ float operator()(const float (&v)[1], float s, float inv) const {
    return qm::fake_quant_value(v[0], s, inv, r);
  }
};

struct FakeQuantBwd {  // inputs: grad_y, x
  qm::IntRange r;
  __device__ float operator()(const float (&v)[2], float, float inv) const {
    return qm::fq_in_range(v[1], inv, r) ? v[0] : 0.0f;
  }
};

struct AdaSoftFwd {  // inputs: w, v
  qm::IntRange r;
  __device__ float operator()(const float (&v)[2], float s, float inv) const {
    return qm::ada_soft_value(v[0], v[1], s, inv, r);
  }
};

struct AdaHardFwd {
  qm::IntRange r;
  __device__ float operator()(const float (&v)[2], float s, float inv) const {
    return qm::ada_hard_value(v[0], v[1], s, inv, r);
  }
};

struct AdaSoftBwd {  // inputs: grad_y, w, v
  qm::IntRange r;
  __device__ float operator()(const float (&v)[3], float s, float inv) const {
    return qm::ada_soft_grad(v[0], v[1], v[2], s, inv, r);
  }
};

struct AdaInit {
  __device__ float operator()(const float (&v)[1], float, float inv) const { return qm::ada_init_value(v[0], inv); }
};

// Tree sum of one double per thread over the block (blockDim.x == kThreads), in a fixed order, so a
// reduction is deterministic for a given grid. Every thread receives the total.
__device__ double block_tree_sum(double value) {
  __shared__ double buf[kThreads];
  buf[threadIdx.x] = value;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) buf[threadIdx.x] += buf[threadIdx.x + stride];
    __syncthreads();
  }
  return buf[0];
}

__device__ void block_sum_to(double value, double* partial) {
  const double total = block_tree_sum(value);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// One block: sums the per-block partials (in a fixed order) and writes factor * total.
__global__ void finalize_sum_kernel(const double* partial, int64_t count, float factor, float* out) {
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) acc += partial[i];
  const double total = block_tree_sum(acc);
  if (threadIdx.x == 0) *out = static_cast<float>(total * static_cast<double>(factor));
}

template <typename T, bool kVec>
__global__ void regularizer_kernel(const T* v, float beta, T* grad_v, int64_t n, double* partial) {
  float acc = 0.0f;
  for_each_group(n, [&](int64_t, int64_t first, int count) {
    float a[4], d[4];
    load4<T, kVec>(v, first, count, a);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float term = qm::ada_reg_value_grad(a[j], beta, &d[j]);
      acc += j < count ? term : 0.0f;
    }
    if (grad_v != nullptr) store4<T, kVec>(grad_v, first, count, d);
  });
  block_sum_to(static_cast<double>(acc), partial);
}

// QDrop's decision for the four elements of group g: one Philox call, or all kept when keep_prob >= 1.
__device__ __forceinline__ void group_keep(uint64_t seed, int64_t g, float keep_prob, bool (&keep)[4]) {
  if (keep_prob >= 1.0f) {
#pragma unroll
    for (int j = 0; j < 4; ++j) keep[j] = true;
    return;
  }
  const qm::Philox4 words = qm::qdrop_words(seed, g);
#pragma unroll
  for (int j = 0; j < 4; ++j) keep[j] = qm::qdrop_keep_word(words.w[j], keep_prob);
}

template <typename T, bool kVec>
__global__ void act_forward_kernel(const T* x, const float* step, T* y, int64_t n, qm::IntRange r,
                                   float keep_prob, uint64_t seed) {
  const float s = *step;
  const float inv = 1.0f / s;
  for_each_group(n, [&](int64_t g, int64_t first, int count) {
    float a[4], out[4];
    bool keep[4];
    load4<T, kVec>(x, first, count, a);
    group_keep(seed, g, keep_prob, keep);
#pragma unroll
    for (int j = 0; j < 4; ++j) out[j] = keep[j] ? qm::fake_quant_value(a[j], s, inv, r) : a[j];
    store4<T, kVec>(y, first, count, out);
  });
}

template <typename T, bool kVec>
__global__ void act_backward_kernel(const T* grad_y, const T* x, const float* step, T* grad_x, int64_t n,
                                    qm::IntRange r, float keep_prob, uint64_t seed, double* partial) {
  const float inv = 1.0f / *step;
  float acc = 0.0f;
  for_each_group(n, [&](int64_t g, int64_t first, int count) {
    float gy[4], a[4], gx[4];
    bool keep[4];
    load4<T, kVec>(grad_y, first, count, gy);
    load4<T, kVec>(x, first, count, a);
    group_keep(seed, g, keep_prob, keep);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float dx, ds;
      qm::lsq_grads(gy[j], a[j], inv, r, &dx, &ds);
      gx[j] = keep[j] ? dx : gy[j];
      acc += (keep[j] && j < count) ? ds : 0.0f;
    }
    store4<T, kVec>(grad_x, first, count, gx);
  });
  block_sum_to(static_cast<double>(acc), partial);
}

int64_t grid_for(int64_t n, int64_t cap) {
  const int64_t groups = (n + 3) / 4;
  const int64_t blocks = (groups + kThreads - 1) / kThreads;
  return blocks < 1 ? 1 : (blocks > cap ? cap : blocks);
}

template <typename T>
bool all_aligned(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (p != nullptr && reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T)) != 0) return false;
  return true;
}

// Calls fn(T{}, vec) with T the element type of `dtype` and vec a std::integral_constant telling whether
// every pointer in `ptrs` allows vector loads.
template <typename Fn>
cudaError_t dispatch(DType dtype, std::initializer_list<const void*> ptrs, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      return all_aligned<float>(ptrs) ? fn(float{}, std::true_type{}) : fn(float{}, std::false_type{});
    case DType::kFloat16:
      return all_aligned<__half>(ptrs) ? fn(__half{}, std::true_type{}) : fn(__half{}, std::false_type{});
    case DType::kBFloat16:
      return all_aligned<__nv_bfloat16>(ptrs) ? fn(__nv_bfloat16{}, std::true_type{})
                                             : fn(__nv_bfloat16{}, std::false_type{});
  }
  return cudaErrorInvalidValue;
}

template <int kN, typename Op>
cudaError_t launch_channel_map(const void* const (&ins)[kN], void* out, int64_t n, const float* scale,
                               ChannelLayout layout, Op op, DType dtype, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return dispatch(dtype, {ins[0], ins[kN - 1], ins[kN / 2], out}, [&](auto tag, auto vec) {
    using T = decltype(tag);
    Inputs<T, kN> in;
    for (int i = 0; i < kN; ++i) in.p[i] = static_cast<const T*>(ins[i]);
    channel_map_kernel<T, decltype(vec)::value, kN, Op>
        <<<grid_for(n, kMaxBlocks), kThreads, 0, stream>>>(in, static_cast<T*>(out), n, scale, layout, op);
    return cudaGetLastError();
  });
}

}  // namespace

int64_t reduction_scratch_size(int64_t n) { return grid_for(n, kMaxReduceBlocks); }

cudaError_t fake_quant_forward(const void* x, const float* scale, void* y, int64_t n, ChannelLayout layout,
                               IntFormat fmt, DType dtype, cudaStream_t stream) {
  return launch_channel_map<1>({x}, y, n, scale, layout, FakeQuantFwd{qm::int_range(fmt.bits, fmt.is_signed)},
                               dtype, stream);
}

cudaError_t fake_quant_backward(const void* grad_y, const void* x, const float* scale, void* grad_x,
                                int64_t n, ChannelLayout layout, IntFormat fmt, DType dtype,
                                cudaStream_t stream) {
  return launch_channel_map<2>({grad_y, x}, grad_x, n, scale, layout,
                               FakeQuantBwd{qm::int_range(fmt.bits, fmt.is_signed)}, dtype, stream);
}

cudaError_t adaround_forward(const void* w, const void* v, const float* scale, void* y, int64_t n,
                             ChannelLayout layout, int bits, bool hard, DType dtype, cudaStream_t stream) {
  const qm::IntRange r = qm::int_range(bits, true);
  if (hard) return launch_channel_map<2>({w, v}, y, n, scale, layout, AdaHardFwd{r}, dtype, stream);
  return launch_channel_map<2>({w, v}, y, n, scale, layout, AdaSoftFwd{r}, dtype, stream);
}

cudaError_t adaround_backward(const void* grad_y, const void* w, const void* v, const float* scale,
                              void* grad_v, int64_t n, ChannelLayout layout, int bits, DType dtype,
                              cudaStream_t stream) {
  return launch_channel_map<3>({grad_y, w, v}, grad_v, n, scale, layout, AdaSoftBwd{qm::int_range(bits, true)},
                               dtype, stream);
}

cudaError_t adaround_init(const void* w, const float* scale, void* v, int64_t n, ChannelLayout layout,
                          DType dtype, cudaStream_t stream) {
  return launch_channel_map<1>({w}, v, n, scale, layout, AdaInit{}, dtype, stream);
}

cudaError_t adaround_regularizer(const void* v, float beta, void* grad_v, float* out, double* scratch,
                                 int64_t n, DType dtype, cudaStream_t stream) {
  const int64_t blocks = grid_for(n, kMaxReduceBlocks);
  const cudaError_t err = dispatch(dtype, {v, grad_v}, [&](auto tag, auto vec) {
    using T = decltype(tag);
    regularizer_kernel<T, decltype(vec)::value><<<blocks, kThreads, 0, stream>>>(
        static_cast<const T*>(v), beta, static_cast<T*>(grad_v), n, scratch);
    return cudaGetLastError();
  });
  if (err != cudaSuccess) return err;
  finalize_sum_kernel<<<1, kThreads, 0, stream>>>(scratch, blocks, 1.0f, out);
  return cudaGetLastError();
}

cudaError_t act_quant_forward(const void* x, const float* step, void* y, int64_t n, IntFormat fmt,
                              float keep_prob, uint64_t seed, DType dtype, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const qm::IntRange r = qm::int_range(fmt.bits, fmt.is_signed);
  return dispatch(dtype, {x, y}, [&](auto tag, auto vec) {
    using T = decltype(tag);
    act_forward_kernel<T, decltype(vec)::value><<<grid_for(n, kMaxBlocks), kThreads, 0, stream>>>(
        static_cast<const T*>(x), step, static_cast<T*>(y), n, r, keep_prob, seed);
    return cudaGetLastError();
  });
}

cudaError_t act_quant_backward(const void* grad_y, const void* x, const float* step, void* grad_x,
                               float* grad_step, double* scratch, int64_t n, IntFormat fmt, float keep_prob,
                               uint64_t seed, float grad_scale, DType dtype, cudaStream_t stream) {
  const qm::IntRange r = qm::int_range(fmt.bits, fmt.is_signed);
  const int64_t blocks = grid_for(n, kMaxReduceBlocks);
  const cudaError_t err = dispatch(dtype, {grad_y, x, grad_x}, [&](auto tag, auto vec) {
    using T = decltype(tag);
    act_backward_kernel<T, decltype(vec)::value><<<blocks, kThreads, 0, stream>>>(
        static_cast<const T*>(grad_y), static_cast<const T*>(x), step, static_cast<T*>(grad_x), n, r, keep_prob,
        seed, scratch);
    return cudaGetLastError();
  });
  if (err != cudaSuccess) return err;
  finalize_sum_kernel<<<1, kThreads, 0, stream>>>(scratch, blocks, grad_scale, grad_step);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace selfocus
