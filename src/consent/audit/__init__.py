"""Tools for auditors: the ``consent audit`` command line (:mod:`consent.audit.cli`).

See ``docs/auditors.md``.
"""

from __future__ import annotations

__all__: list[str] = []
