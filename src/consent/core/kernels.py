"""The one place that picks the compiled kernels or their pure-Python twins.

The kernels are small pure functions over bytes that every request runs. Their
behaviour is defined by the pure-Python twins (``_kernels_py`` and
:func:`consent.core.inject.inject_page`); ``_speedups.c`` holds compiled versions
that give the same results. The compiled ones are used when the extension is
built, unless ``CONSENT_PURE_PYTHON`` is set to a non-empty value. Everything
else imports the kernels from here.
"""

from __future__ import annotations

import os
from types import ModuleType

from . import _kernels_py
from .inject import inject_page as _inject_page_py

__all__ = ["COMPILED", "header_kinds", "inject_page", "read_request", "sec_gpc"]


def _compiled() -> ModuleType | None:
    if os.environ.get("CONSENT_PURE_PYTHON"):
        return None
    try:
        from . import _speedups  # type: ignore[attr-defined]
    except ImportError:  # built without a C compiler: the pure twins run
        return None
    return _speedups  # type: ignore[no-any-return]


_c = _compiled()
#: Whether the compiled kernels are in use.
COMPILED = _c is not None

if _c is not None:
    header_kinds = _c.header_kinds
    read_request = _c.read_request
    sec_gpc = _c.sec_gpc
    _c_inject_page = _c.inject_page

    def inject_page(page: bytes, body: bytes, head: bytes = b"", window: int = 65536) -> bytes:
        """See :func:`consent.core.inject.inject_page` (compiled for the usual page)."""
        done: bytes | None = _c_inject_page(page, body, head, window)
        return _inject_page_py(page, body, head, window) if done is None else done

else:
    header_kinds = _kernels_py.header_kinds
    read_request = _kernels_py.read_request
    sec_gpc = _kernels_py.sec_gpc
    inject_page = _inject_page_py
