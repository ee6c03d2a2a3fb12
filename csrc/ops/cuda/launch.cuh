// Launch geometry shared by the CUDA kernels (grid-stride loops over n items) and their accumulator type.
#pragma once

#include <cstdint>

namespace gnnlab {
namespace cuda {

constexpr int kThreads = 256;

// Blocks for n items, capped so huge inputs are covered by the grid-stride loop.
inline unsigned int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(b < 65535 ? (b > 0 ? b : 1) : 65535);
}

// Accumulator of a kernel on scalar_t: float for float/half/bfloat16, double for double.
template <typename scalar_t>
struct Acc {
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};

}  // namespace cuda
}  // namespace gnnlab
