"""Builds the optional compiled twins of two hot loops (``consent.core._speedups``).

Everything else about the package is in ``pyproject.toml``. Without a C compiler the
extension is skipped (``optional=True``) and the pure-Python code runs instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "consent.core._speedups",
            ["src/consent/core/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
