"""A separate writer process: ``python -m tests.log._writer URL PREFIX N START_AT``."""

from __future__ import annotations

import asyncio
import sys
import time

from consent.log import open_store

from ._helpers import make_entry


async def main(url: str, prefix: str, n: int, start_at: float) -> None:
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
    print(n)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
