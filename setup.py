"""Build varlen's one compiled module, ``varlen.data._native`` (the padding kernel).

Everything else is declared in ``pyproject.toml``. The kernel is optional: where it cannot be
compiled (no C compiler), the install still succeeds and ``varlen.pad_sequences`` uses its
NumPy implementation (same results, slower; ``varlen.data.padding.NATIVE`` tells which runs).
Set ``VARLEN_REQUIRE_NATIVE=1`` to make a failed compile fail the install (CI does).
"""

from __future__ import annotations

import os
import sys

import numpy as np
from setuptools import Extension, setup

required = os.environ.get("VARLEN_REQUIRE_NATIVE") == "1"
flags = (
    []
    if sys.platform == "win32"
    else ["-O3", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
)

setup(
    ext_modules=[
        Extension(
            "varlen.data._native",
            ["src/varlen/data/_native.c"],
            include_dirs=[np.get_include()],
            extra_compile_args=flags,
            optional=not required,
        )
    ]
)
