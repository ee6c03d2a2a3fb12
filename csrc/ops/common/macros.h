// Portability macros shared by the CPU and CUDA kernels. This header includes no torch headers so
// that the .cu files can be compiled by plain nvcc.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define GNNLAB_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
// Always inlined on the CPU, so a caller compiled for a wider ISA (target("avx2")) vectorises them
// with its own instruction set.
#define GNNLAB_HD inline __attribute__((always_inline))
#else
#define GNNLAB_HD inline
#endif
