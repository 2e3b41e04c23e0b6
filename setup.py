"""Builds selfocus_ext._C with torch.utils.cpp_extension.

The C++ core and the CPU glue are always built. The CUDA kernels and their glue are added when the
installed torch has CUDA and nvcc is found, unless SELFOCUS_FORCE_CPU=1. Build against the torch that will
run the package: `pip install --no-build-isolation .` (an isolated build would fetch another torch).
"""
import glob
import os

from setuptools import find_packages, setup

try:
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
except ImportError as exc:  # pragma: no cover - only reached by a misconfigured build
    raise SystemExit(
        "selfocus_ext builds against an installed torch: install torch first (on a CPU machine: "
        "`pip install torch==2.13.0`), then build with `pip install --no-build-isolation .`"
    ) from exc

ROOT = os.path.dirname(os.path.abspath(__file__))


def _sources(pattern):
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def _want_cuda():
    if os.environ.get("SELFOCUS_FORCE_CPU", "0") not in ("", "0"):
        return False
    return torch.version.cuda is not None and CUDA_HOME is not None


# -ffp-contract=off keeps x*(1/s) rounded to float32 before rounding to an integer (see quant_math.h);
# nvcc's --fmad=false does the same on the device so both paths compute the same products.
# -fno-trapping-math / -fno-math-errno (as torch itself uses) let GCC if-convert and vectorise the loops;
# -fopenmp makes at::parallel_for (header code, OpenMP build of torch) actually run in parallel.
CXX_FLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno", "-fopenmp"]
NVCC_FLAGS = ["-O3", "--fmad=false"]

sources = _sources("csrc/core/*.cpp") + [p for p in _sources("csrc/torch/*.cpp") if not p.endswith("_cuda.cpp")]
if _want_cuda():
    ext = CUDAExtension(
        "selfocus_ext._C",
        sources + _sources("csrc/cuda/*.cu") + _sources("csrc/torch/*_cuda.cpp"),
        include_dirs=[os.path.join(ROOT, "csrc")],
        define_macros=[("SELFOCUS_WITH_CUDA", None)],
        extra_compile_args={"cxx": CXX_FLAGS, "nvcc": NVCC_FLAGS},
        extra_link_args=["-fopenmp"],
    )
else:
    ext = CppExtension(
        "selfocus_ext._C",
        sources,
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_compile_args={"cxx": CXX_FLAGS},
        extra_link_args=["-fopenmp"],
    )

setup(
    packages=find_packages(include=["selfocus_ext", "selfocus_ext.*"]),
    package_data={"selfocus_ext.models": ["weights/*.pt", "weights/*.md", "weights/*.json"]},
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
