"""The numeric platform an episode ran on: what decides its floating-point bits besides the code.

The engines are deterministic, but only on one platform. numpy hands matrix products and
solves to its BLAS, and OpenBLAS picks a kernel for the CPU it finds (Haswell, SkylakeX, Zen,
...); kernels sum in different orders, so the same step differs in the last bits from one
machine to another (seen here: 5e-14 after one step between the Haswell and SkylakeX kernels of
one OpenBLAS build). numpy's own loops (sin, exp, ...) are likewise dispatched by CPU features.
Every demo records this fingerprint, so that ``tground replay`` can say whether bit for bit is to
be expected: it is on the recording platform, and only rounding-close elsewhere.
"""

from __future__ import annotations

import functools
import os
import platform

import numpy as np


def _numpy_blas() -> str:
    """numpy's own BLAS library, its version and the kernel it chose for this CPU (threadpoolctl reads them)."""
    from threadpoolctl import threadpool_info

    libraries = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    # scipy and torch may load BLAS libraries of their own: numpy's is the one inside numpy's folder.
    # Wheels keep it in numpy.libs beside the package (site-packages/numpy.libs/...).
    numpy_folder = os.path.dirname(os.path.dirname(np.__file__))
    own = [info for info in libraries
           if os.path.relpath(str(info.get("filepath", "")), numpy_folder).startswith("numpy")] or libraries[:1]
    if not own:
        return "no BLAS"
    info = own[0]
    kernel = info.get("architecture")
    return f"{info.get('internal_api', '?')} {info.get('version', '?')}" + (f" ({kernel})" if kernel else "")


def _numpy_simd() -> str:
    """The newest CPU feature group numpy dispatches its loops to on this machine."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy 1.x keeps them in numpy.core
        try:
            from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        except ImportError:
            return "?"
    found = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    return found[-1] if found else "baseline"


@functools.lru_cache(maxsize=1)
def numeric_platform() -> str:
    """e.g. ``numpy 2.4.6, openblas 0.3.31.188.0 (SkylakeX), SIMD AVX512_SPR, x86_64``."""
    return f"numpy {np.__version__}, {_numpy_blas()}, SIMD {_numpy_simd()}, {platform.machine()}"
