// Portability macros shared by the CPU and CUDA kernels. This header includes no torch headers so
// that the .cu files can be compiled by plain nvcc.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define GNNLAB_HD __host__ __device__ __forceinline__
#else
#define GNNLAB_HD inline
#endif
