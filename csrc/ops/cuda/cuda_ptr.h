// Raw device pointers of tensors for the CUDA kernels, shared by the torch glue (*_cuda.cpp; built only
// when torch has CUDA). The kernels are instantiated for CUDA's own half types, which share c10's bit layout.
#pragma once

#include <ATen/ATen.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace gnnlab {

template <typename T>
struct CudaType {
  using type = T;
};
template <>
struct CudaType<at::Half> {
  using type = __half;
};
template <>
struct CudaType<at::BFloat16> {
  using type = __nv_bfloat16;
};

// The data of `t` as the kernels' element type; null for an undefined tensor.
template <typename T>
typename CudaType<T>::type* cuda_ptr(const at::Tensor& t) {
  return t.defined() ? reinterpret_cast<typename CudaType<T>::type*>(t.data_ptr<T>()) : nullptr;
}

}  // namespace gnnlab
