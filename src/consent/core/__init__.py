"""The sans-IO core: pure, synchronous logic shared by the ASGI and WSGI shells.

Nothing in this package imports starlette, asyncio or anyio, or does I/O.
"""
