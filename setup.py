"""Builds the optional AVX-512 kernel of lexmargin.numeric.fused; everything else is in pyproject.toml.

The extension is optional: without a C compiler (or on a CPU without AVX-512F at run time) the numpy
path is used and nothing else changes.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("lexmargin.numeric._fused", ["lexmargin/numeric/_fused.c"], optional=True,
                             depends=["lexmargin/numeric/_fused_kernel.h"], extra_compile_args=["-O3"])])
