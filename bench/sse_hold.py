"""Hold live-event streams open against a running server, for the memory benchmark (bench/memory.sh).

Opens STREAMS streams (``GET /api/v1/users/{id}/tasks/events``), alternating between the readers
and the writers of a bench/seed_sql.py users.txt, so the load's writes (creates by writers,
completes by readers) reach some of them as events. Each stream reads its events until SIGTERM or
SIGINT; a stream that ends is opened again after a second (at most 100 times each). Writes
``opened=<n> events=<n> reopened=<n>`` to the totals file every 5 s and at the end.

usage: python bench/sse_hold.py BASE_URL USERS_TXT STREAMS TOTALS_FILE
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

REOPENS = 100


@dataclass
class Totals:
    """What the streams have seen so far."""

    opened: int = 0
    events: int = 0
    reopened: int = 0

    def line(self) -> str:
        """The totals file's one line."""
        return f"opened={self.opened} events={self.events} reopened={self.reopened}\n"


def targets(users_txt: Path, streams: int) -> list[tuple[str, str, str]]:
    """(user id, token, client address) of each stream: reader 1, writer 1, reader 2, ..."""
    people: list[tuple[str, str]] = []
    for line in users_txt.read_text().splitlines():
        uid, token, writer, writer_token, _ = line.split()
        people += [(uid, token), (writer, writer_token)]
    return [(*people[i % len(people)], f"10.200.{i // 256 % 256}.{i % 256}") for i in range(streams)]


async def stream(http: httpx.AsyncClient, target: tuple[str, str, str], totals: Totals) -> None:
    """One stream, opened again when it ends (bounded)."""
    uid, token, address = target
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": address, "Accept": "text/event-stream"}
    for attempt in range(REOPENS):
        with contextlib.suppress(httpx.HTTPError):
            async with http.stream("GET", f"/api/v1/users/{uid}/tasks/events", headers=headers) as answer:
                if answer.status_code == httpx.codes.OK:
                    totals.opened += attempt == 0
                    totals.reopened += attempt > 0
                    async for line in answer.aiter_lines():
                        totals.events += line.startswith("data:")
        await asyncio.sleep(1)


async def main(base_url: str, users_txt: Path, streams: int, totals_file: Path) -> None:
    """Open the streams, report, stop on a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    totals = Totals()
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30, read=None), limits=limits) as http:
        tasks = [asyncio.create_task(stream(http, target, totals)) for target in targets(users_txt, streams)]
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)
            await asyncio.to_thread(totals_file.write_text, totals.line())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(totals_file.write_text, totals.line())


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: python bench/sse_hold.py BASE_URL USERS_TXT STREAMS TOTALS_FILE")
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])))
