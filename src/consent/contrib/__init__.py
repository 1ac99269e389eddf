"""Framework adapters, one module each; none is imported until it is used.

``consent.contrib.starlette``, ``.fastapi``, ``.litestar``, ``.quart``,
``.django`` (an installable Django app) and ``.flask``.
"""
