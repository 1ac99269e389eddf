"""A separate writer process: ``python -m tests.log._writer URL PREFIX OTHER N START_AT``.

After its first wave of appends, each writer waits until the *other* process's
first record is in the log, so both really write at the same time even on a
loaded machine.
"""

from __future__ import annotations

import asyncio
import sys
import time

from consent.log import open_store

from ._helpers import make_entry


async def main(url: str, prefix: str, other: str, n: int, start_at: float) -> None:
    async with open_store(url) as store:
        # Both processes start appending at the same moment, to really interleave.
        await asyncio.sleep(max(0.0, start_at - time.time()))
        for wave in range(0, n, 25):
            await asyncio.gather(
                *(
                    store.append(make_entry(i, consent_id=f"{prefix}-{i}"))
                    for i in range(wave, min(n, wave + 25))
                )
            )
            deadline = time.monotonic() + 60
            while wave == 0 and not await store.history(f"{other}-0"):
                assert time.monotonic() < deadline, "the other writer never wrote"
                await asyncio.sleep(0.01)
    print(n)


if __name__ == "__main__":
    url, prefix, other, n, start_at = sys.argv[1:]
    asyncio.run(main(url, prefix, other, int(n), float(start_at)))
