"""Builds the optional compiled kernels (``consent.core._speedups``).

Four pure functions over bytes that every request runs (``header_kinds``,
``sec_gpc``, ``read_request``, ``inject_page``). Their pure-Python twins in
``consent.core._kernels_py`` and ``consent.core.inject`` define the behaviour, and
``consent.core.kernels`` picks the compiled ones when they are built. Everything
else about the package is in ``pyproject.toml``. Without a C compiler the
extension is skipped (``optional=True``) and the pure twins run instead.
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
