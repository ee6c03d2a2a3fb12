// Input checks shared by the ops: index tensors, CSR offsets, devices. Every check raises a Python
// ValueError (TORCH_CHECK_VALUE) whose message starts with the op and names the argument. Range
// checks run as a few reductions on the tensor's own device, O(length) each, with one host read.
#pragma once

#include <torch/types.h>

namespace gnnlab {

// `t` lies on `device`.
void check_device(const at::Tensor& t, const at::Device& device, const char* name, const char* op);

// CSR offsets: 1-D int64 with at least one entry, rowptr[0] == 0, rowptr[-1] == num_entries and
// non-decreasing (so every entry lies in [0, num_entries]).
void check_offsets(const at::Tensor& rowptr, int64_t num_entries, const char* name, const char* op);

// 1-D index tensor: int64 (or int32 when allow_int32) with `length` entries (any length when
// length < 0), each in [0, bound); `bound_name` says what the bound is in the message.
void check_indices(const at::Tensor& index, int64_t length, int64_t bound, bool allow_int32, const char* name,
                   const char* bound_name, const char* op);

}  // namespace gnnlab
