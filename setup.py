"""Build script for gnnlab.

Package metadata lives in pyproject.toml; this file only adds the compiled extension
``gnnlab._C`` and ships the Hydra configs (``conf/``) inside the package as ``gnnlab/conf``.

Environment variables:
  GNNLAB_NO_EXTENSION=1   skip the C++/CUDA extension (gnnlab then uses its plain-torch ops)
  GNNLAB_FORCE_CUDA=1     build the CUDA glue even when no GPU is visible (needs a CUDA torch)
  GNNLAB_SANITIZE=1       compile and link the C++ sources with AddressSanitizer + UndefinedBehaviorSanitizer
                          (-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-wrapv
                          -fno-omit-frame-pointer -g -O1; "address,undefined" is the same, a subset such as
                          "address" also works). Python is not instrumented, so the runtime must be
                          preloaded: scripts/sanitize.sh builds in place and runs tests/ops that way
  MAX_JOBS                parallel compile jobs (ninja)
"""
import glob
import os

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _conf_files():
    files = []
    for path in glob.glob(os.path.join(ROOT, "conf", "**", "*.yaml"), recursive=True):
        files.append(os.path.relpath(path, os.path.join(ROOT, "conf")))
    return files


def _sanitize_flags():
    """Compile/link flags for GNNLAB_SANITIZE (empty when unset or 0)."""
    value = os.environ.get("GNNLAB_SANITIZE", "0").strip()
    if value in ("", "0"):
        return []
    kinds = ["address", "undefined"] if value == "1" else [k.strip() for k in value.split(",") if k.strip()]
    unknown = sorted(set(kinds) - {"address", "undefined"})
    if unknown:
        raise ValueError(f"GNNLAB_SANITIZE: unknown sanitizer(s) {unknown}; use 1 or a subset of address,undefined")
    flags = [f"-fsanitize={','.join(kinds)}", "-fno-omit-frame-pointer", "-g", "-O1"]
    if "undefined" in kinds:
        flags.append("-fno-sanitize-recover=undefined")  # UB aborts with its report instead of continuing
        # Python's CFLAGS carry -fwrapv, which defines signed overflow and so turns UBSan's
        # signed-integer-overflow check off; the sanitized build checks it.
        flags.append("-fno-wrapv")
    return flags


def _extensions():
    if os.environ.get("GNNLAB_NO_EXTENSION", "0") == "1":
        return [], {}
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

    sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/ops/*.cpp") + glob.glob("csrc/ops/cpu/*.cpp"))
    # -ffp-contract=off: no implicit fused multiply-adds, so the baseline and AVX2 variants of a kernel
    # (which run the same operations in the same order) give bit-identical results; a kernel that
    # wants one writes it (scan::fmadd), and then every variant fuses it.
    # -fno-trapping-math: nothing reads the floating-point exception flags; without it gcc keeps the
    # selects of a branch-free function (the selective scan's exp) as branches and cannot vectorise
    # it. No result changes.
    extra_compile_args = {"cxx": ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-trapping-math"]}
    extra_link_args = []
    define_macros = []
    # OpenMP gives at::parallel_for real threads when torch was built with it.
    if torch.backends.openmp.is_available():
        extra_compile_args["cxx"].append("-fopenmp")
        extra_link_args.append("-fopenmp")
    # Sanitizers: the later -O1 overrides -O3; the same flags go to the link so the runtime is linked in.
    sanitize = _sanitize_flags()
    extra_compile_args["cxx"] += sanitize
    extra_link_args += sanitize
    # The CUDA glue is compiled only when this torch has CUDA: a CPU torch lacks the CUDA headers.
    with_cuda = torch.version.cuda is not None and CUDA_HOME is not None and (
        torch.cuda.is_available() or os.environ.get("GNNLAB_FORCE_CUDA", "0") == "1"
    )
    if with_cuda:
        sources += sorted(glob.glob("csrc/ops/cuda/*.cpp") + glob.glob("csrc/ops/cuda/*.cu"))
        extra_compile_args["nvcc"] = ["-O3", "-std=c++17", "--expt-relaxed-constexpr"]
        define_macros.append(("GNNLAB_WITH_CUDA", None))
        ext_cls = CUDAExtension
    else:
        ext_cls = CppExtension
    ext = ext_cls(
        name="gnnlab._C",
        sources=sources,
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_compile_args=extra_compile_args,
        extra_link_args=extra_link_args,
        define_macros=define_macros,
        py_limited_api=False,
    )
    return [ext], {"build_ext": BuildExtension.with_options(no_python_abi_suffix=True)}


ext_modules, cmdclass = _extensions()

setup(
    packages=find_packages(include=["gnnlab", "gnnlab.*"]) + ["gnnlab.conf"],
    package_dir={"gnnlab.conf": "conf"},
    package_data={"gnnlab.conf": _conf_files()},
    include_package_data=False,
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
