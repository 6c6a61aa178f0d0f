"""Builds the optional AVX-512 kernel of lexmargin.numeric.fused; everything else is in pyproject.toml.

The extension is optional: without a C compiler (or on a CPU without AVX-512F at run time) the numba
kernel (``pip install lexmargin[fast]``) or numpy does its work and nothing else changes.  It is built
with OpenMP where the compiler has it (the kernel can then split one lane's samples over threads) and
without it otherwise.  -fno-math-errno and -fno-trapping-math let the compiler vectorize the geometry steps'
loops (sqrt, comparisons and selects over the runs; _fused_kernel.h, geo_update_): the values are unchanged.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP = ["-fopenmp"]


class BuildWithOptionalOpenMP(build_ext):
    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception:                       # no OpenMP (e.g. Apple clang): build the serial kernel
            ext.extra_compile_args = [a for a in ext.extra_compile_args if a not in OPENMP]
            ext.extra_link_args = [a for a in ext.extra_link_args if a not in OPENMP]
            super().build_extension(ext)


setup(ext_modules=[Extension("lexmargin.numeric._fused", ["lexmargin/numeric/_fused.c"], optional=True,
                             depends=["lexmargin/numeric/_fused_kernel.h", "lexmargin/numeric/_fused_multiclass.h"],
                             extra_compile_args=["-O3", "-fno-math-errno", "-fno-trapping-math", *OPENMP],
                             extra_link_args=OPENMP)],
      cmdclass={"build_ext": BuildWithOptionalOpenMP})
