// Schemas of every gnnlab op, and the Python module object `gnnlab._C`.
// Kernels are registered per device in csrc/ops/<device>/; fake (meta) kernels and autograd
// formulas are registered from Python (gnnlab/ops/*.py).
#include <Python.h>
#include <torch/library.h>

extern "C" {
// Importing gnnlab._C runs the static TORCH_LIBRARY initialisers below; the module itself is empty.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(gnnlab, m) {
  // Stable COO -> CSR grouping by edge_index[0]: (rowptr [N+1] int64, col [E], perm [E] int64).
  m.def("coo_to_csr(Tensor edge_index, int num_nodes) -> (Tensor, Tensor, Tensor)");
}
