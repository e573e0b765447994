"""Seed a migrated bench database with SQL (generate_series), not through the API: many users, many tasks.

The API would take minutes for 100,000 tasks, and hours for 1,000 registrations (argon2); SQL takes
seconds. Each user gets a live login session (``auth_sessions``) and an access token signed by the
service's own code (``TokenIssuer``, ``SECRET_KEY`` from the environment), so wrk can act as every
one of them. Tasks respect the schema of migrations 0001-0005: a revision per row (below the
current transaction id, in the order of ``updated_at``, as the change feed expects), timestamps
36 s apart going back from now (100 tasks an hour), a third completed, priorities in turn, some
due dates, and what later migrations require (LATER_COLUMNS: the default list, a rank). The triggers on tasks (live
events, webhook outbox) are off during the seed: nobody listens yet.

Writes, in OUT:

- ``users.txt``: one line per reader: ``uid token writer_uid writer_token id1,id2,...`` (up to 10 of
  the reader's task ids, for gets; the writer owns what creates make, so readers' lists stay put);
  this is what the spreading Lua scripts read (``bench/scenarios/spread_common.lua``);
- ``seed.env`` and ``ids.txt`` as the harness's seeder writes them, for the first reader and writer
  (scripts that run the harness's scenarios without the harness: bench/memory.sh, bench/growth.sh);
- ``big.env`` (with ``--big-user-tasks``): the big user's ``BIG_UID``, ``BIG_TOKEN``, ``BIG_TASK``
  (a task id), ``BIG_CURSOR`` (the change feed's position an hour ago) and ``BIG_WORD`` (a word
  that the search finds in 1% of the titles).

usage: seed_sql.py DATABASE_URL OUT [--readers N] [--tasks M] [--big-user-tasks K] [--prefix P]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
from argon2 import PasswordHasher

from todo_service.security.tokens import TokenIssuer, build_jwt_auth
from todo_service.tasks.cursors import Cursors

PASSWORD = "Bench-Passw0rd-42!"  # noqa: S105  (the bench's throwaway accounts)
STEP_SECONDS = 36  # between two tasks' timestamps: 100 an hour
IDS_PER_READER = 10

USERS_SQL = """
INSERT INTO users (id, email, first_name, last_name, password_hash, role, is_active, feed_floor,
                   created_at, updated_at)
SELECT gen_random_uuid(), $1 || '-' || g || '@example.com', 'Bench', 'User ' || g, $2, 'user', true, 0,
       now() - interval '60 days', now() - interval '60 days'
  FROM generate_series(1, $3::int) g
RETURNING id, email
"""
SESSIONS_SQL = """
INSERT INTO auth_sessions (id, user_id, created_at, expires_at, revoked_at)
SELECT gen_random_uuid(), u, now(), now() + interval '30 days', NULL FROM unnest($1::uuid[]) u
RETURNING id, user_id
"""
# $1 owners, $2 tasks each, $3 the highest revision to hand out (below the current transaction id).
# {more_columns} and {more_values}: the columns later migrations added (LATER_COLUMNS) that need a value.
TASKS_SQL = """
INSERT INTO tasks (id, user_id, title, description, completed, priority, due_date, completed_at, revision,
                   deleted_at, created_at, updated_at{more_columns})
SELECT gen_random_uuid(), o.u,
       'Task ' || g || CASE WHEN g % 100 = 0 THEN ' quarterly' ELSE '' END,
       'Seeded task ' || g || ' for the load benchmark',
       g % 3 = 0,
       (ARRAY['low', 'medium', 'high', 'urgent'])[g % 4 + 1],
       CASE WHEN g % 5 = 0 THEN now() + ((g % 60) - 30) * interval '1 day' END,
       CASE WHEN g % 3 = 0 THEN now() - ($2 - g) * interval '36 seconds' END,
       1 + ((g - 1)::bigint * ($3 - 1)) / $2,
       NULL,
       now() - ($2 - g) * interval '36 seconds',
       now() - ($2 - g) * interval '36 seconds'{more_values}
  FROM unnest($1::uuid[]) AS o(u), generate_series(1, $2::int) g
"""
# Required columns of later migrations: the owner's default list (0006); a rank in the manual order,
# unique among the list's top-level tasks, in tasks/ranks.py's form (0007).
LATER_COLUMNS = {
    "list_id": "(SELECT l.id FROM task_lists l WHERE l.user_id = o.u AND l.is_default)",
    "position": "'n0' || lpad(g::text, 15, '0') || '1'",
}
REQUIRED_SQL = """
SELECT column_name FROM information_schema.columns
 WHERE table_name = 'tasks' AND is_nullable = 'NO' AND column_default IS NULL
"""
# The feed's position an hour ago: the last change older than an hour, in (revision, id) order.
HOUR_AGO_SQL = """
SELECT revision, id FROM tasks WHERE user_id = $1 AND updated_at <= now() - interval '1 hour'
 ORDER BY revision DESC, id DESC LIMIT 1
"""


def asyncpg_dsn(url: str) -> str:
    """SQLAlchemy's ``postgresql+asyncpg://`` URL as asyncpg takes it."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def users(db: asyncpg.Connection, prefix: str, count: int, password_hash: str) -> list[uuid.UUID]:
    """``count`` new users (emails ``prefix-<n>@example.com``), in creation order."""
    rows = await db.fetch(USERS_SQL, prefix, password_hash, count)
    return [row["id"] for row in sorted(rows, key=lambda row: int(row["email"].split("-")[-1].split("@")[0]))]


async def tasks(db: asyncpg.Connection, owners: list[uuid.UUID], each: int, top_revision: int) -> None:
    """``each`` tasks for every owner, in one statement per 200,000 rows."""
    required = {row["column_name"] for row in await db.fetch(REQUIRED_SQL)}
    given = {"id", "user_id", "title", "completed", "priority", "created_at", "updated_at"}
    unknown = required - given - LATER_COLUMNS.keys()
    if unknown:
        sys.exit(f"seed_sql: tasks has required columns this seeder does not know: {sorted(unknown)}")
    more = [name for name in LATER_COLUMNS if name in required]
    sql = TASKS_SQL.format(
        more_columns="".join(f", {name}" for name in more),
        more_values="".join(f", {LATER_COLUMNS[name]}" for name in more),
    )
    per_batch = max(1, 200_000 // max(each, 1))
    for start in range(0, len(owners), per_batch):
        await db.execute(sql, owners[start : start + per_batch], each, top_revision)


async def seed(args: argparse.Namespace) -> dict[str, str]:
    """Insert and analyze; -> the files to write (name -> text)."""
    secret = os.environ.get("SECRET_KEY") or sys.exit("seed_sql: SECRET_KEY must be set (the server's)")
    minutes = int(os.environ.get("ACCESS_TOKEN_EXPIRE_MINUTES", "600"))
    issuer = TokenIssuer(build_jwt_auth(secret, timedelta(minutes=minutes)))
    files: dict[str, str] = {}
    started = time.perf_counter()
    password_hash = PasswordHasher().hash(PASSWORD)
    db = await asyncpg.connect(asyncpg_dsn(args.database_url))
    try:
        top_revision = int(await db.fetchval("SELECT pg_current_xact_id()::text::bigint")) - 1
        async with db.transaction():
            readers = await users(db, f"{args.prefix}-reader", args.readers, password_hash)
            writers = await users(db, f"{args.prefix}-writer", args.readers, password_hash)
            big = await users(db, f"{args.prefix}-big", 1, password_hash) if args.big_user_tasks else []
            sessions = {row["user_id"]: row["id"] for row in await db.fetch(SESSIONS_SQL, readers + writers + big)}
            # The tasks without their triggers (live events, webhook outbox): nobody listens yet. The
            # users' keep theirs: from migration 0006 on, one makes each account's default list.
            await db.execute("SET LOCAL session_replication_role = replica")
            await tasks(db, readers, args.tasks, top_revision)
            if big:
                await tasks(db, big, args.big_user_tasks, top_revision)
        await db.execute("VACUUM (ANALYZE) tasks")
        await db.execute("VACUUM (ANALYZE) users")
        await db.execute("VACUUM (ANALYZE) auth_sessions")

        def token(user: uuid.UUID) -> str:
            return issuer.issue(user, sessions[user]).access_token

        lines = []
        for reader, writer in zip(readers, writers, strict=True):
            ids = await db.fetch(
                "SELECT id FROM tasks WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2", reader, IDS_PER_READER
            )
            task_ids = ",".join(str(row["id"]) for row in ids) or str(uuid.UUID(int=0))
            lines.append(f"{reader} {token(reader)} {writer} {token(writer)} {task_ids}")
        files["users.txt"] = "\n".join(lines) + "\n"
        if readers:  # the harness's files too (its Lua scripts start from them): the first reader and writer
            first = lines[0].split()
            files["ids.txt"] = first[4].replace(",", "\n") + "\n"
            files["seed.env"] = (
                f"STYLE=contract\nTOKEN_R={first[1]}\nUID_R={first[0]}\nTOKEN_W={first[3]}\nUID_W={first[2]}\n"
                f"EMAIL_R={args.prefix}-reader-1@example.com\nPASSWORD={PASSWORD}\n"
            )
        if big:
            owner = big[0]
            task = await db.fetchval(
                "SELECT id FROM tasks WHERE user_id = $1 ORDER BY created_at LIMIT 1 OFFSET $2",
                owner,
                args.big_user_tasks // 2,
            )
            hour_ago = await db.fetchrow(HOUR_AGO_SQL, owner)
            position = (int(hour_ago["revision"]), hour_ago["id"]) if hour_ago else (0, uuid.UUID(int=0))
            cursor = Cursors(secret).make(owner, position)
            files["big.env"] = (
                f"BIG_UID={owner}\nBIG_TOKEN={token(owner)}\nBIG_TASK={task}\nBIG_CURSOR={cursor}\nBIG_WORD=quarterly\n"
            )
    finally:
        await db.close()
    total = args.readers * args.tasks + args.big_user_tasks
    print(
        f"seeded {len(readers)} readers x {args.tasks} tasks, {len(writers)} writers"
        + (f", one user with {args.big_user_tasks} tasks" if big else "")
        + f" ({total} tasks) in {time.perf_counter() - started:.1f}s"
    )
    return files


def main() -> None:
    """Parse the arguments and seed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("database_url")
    parser.add_argument("out")
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=200, help="tasks per reader")
    parser.add_argument("--big-user-tasks", type=int, default=0, help="one more user with this many tasks")
    parser.add_argument("--prefix", default="spread")
    args = parser.parse_args()
    files = asyncio.run(seed(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)


if __name__ == "__main__":
    main()
