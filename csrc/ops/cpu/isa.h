// Run-time choice of the CPU instruction set for kernels compiled in several variants.
//
// Kernels that benefit from wider vectors are compiled twice in the same file: once for the
// baseline ISA of the build and once with __attribute__((target("avx2,fma,f16c"))). cpu_isa()
// picks the widest variant the CPU supports; GNNLAB_CPU_ISA=baseline (or avx2) in the environment
// overrides it, which is how the tests run both variants on one machine.
#pragma once

#include <cstdlib>
#include <cstring>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(_M_X64))
#define GNNLAB_HAVE_AVX2_DISPATCH 1
#else
#define GNNLAB_HAVE_AVX2_DISPATCH 0
#endif

namespace gnnlab {

enum class CpuIsa { kBaseline, kAvx2 };

inline bool cpu_supports_avx2() {
#if GNNLAB_HAVE_AVX2_DISPATCH
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                                __builtin_cpu_supports("f16c");
  return supported;
#else
  return false;
#endif
}

// Read on every call (a getenv is negligible next to a kernel) so tests can switch variants.
inline CpuIsa cpu_isa() {
  const char* forced = std::getenv("GNNLAB_CPU_ISA");
  if (forced != nullptr && std::strcmp(forced, "baseline") == 0) return CpuIsa::kBaseline;
  return cpu_supports_avx2() ? CpuIsa::kAvx2 : CpuIsa::kBaseline;
}

}  // namespace gnnlab
