"""What DATABASE_PGBOUNCER costs per statement: asyncpg with and without its statement cache.

One connection runs one parameterised SELECT in a loop (the best of 3 rounds of ``ROUNDS``) on a
throwaway PostgreSQL: directly with the cache (the default), directly without it, and through
Debian's PgBouncer in transaction mode without it. Loopback only. Run:
``uv run --frozen python -m scripts.pgbouncer_cost`` (needs postgresql and pgbouncer installed).
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from tests.scale.servers import pgbouncer
from tests.servers import postgres_server

ROUNDS = 4000
SQL = "SELECT n, md5(n::text) FROM generate_series(1, 10) AS n WHERE n = $1"


async def per_statement(url: str, cache_size: int) -> float:
    """Microseconds per statement, the best of three rounds after a warm-up."""
    connection = await asyncpg.connect(url, statement_cache_size=cache_size)
    try:
        for n in range(200):
            await connection.fetchrow(SQL, n % 10 + 1)
        rounds = []
        for _ in range(3):
            started = time.perf_counter()
            for n in range(ROUNDS):
                await connection.fetchrow(SQL, n % 10 + 1)
            rounds.append((time.perf_counter() - started) / ROUNDS * 1e6)
        return min(rounds)
    finally:
        await connection.close()


def main() -> None:
    """Print the three figures."""
    with postgres_server() as server, pgbouncer(server.url, pool_size=2) as bouncer:
        direct = server.url.replace("+asyncpg", "")
        bounced = bouncer.url(server.url).replace("+asyncpg", "")
        for label, url, cache in (
            ("PostgreSQL, statement cache (default)", direct, 100),
            ("PostgreSQL, no cache (DATABASE_PGBOUNCER)", direct, 0),
            ("PgBouncer transaction mode, no cache", bounced, 0),
        ):
            print(f"{label}: {asyncio.run(per_statement(url, cache)):.0f} us per statement")  # noqa: T201


if __name__ == "__main__":
    main()
