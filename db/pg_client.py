"""tortoise's asyncpg client, with every statement waiting out a lost connection (see patience.py).

Only statements outside a transaction are retried (tortoise's transaction wrapper is a
class of its own): each of them is one unit the server either did or did not apply. An
INSERT whose connection was cut mid-statement is not retried (it may have been applied, and
a second one would be a duplicate row): that error reaches the caller.
"""

from __future__ import annotations

from tortoise.backends.asyncpg.client import AsyncpgDBClient

from db.patience import patiently


class PatientAsyncpgClient(AsyncpgDBClient):
    """AsyncpgDBClient whose statements wait for the database within the task's patience."""

    async def execute_insert(self, query: str, values: list):
        """INSERT ... RETURNING, retried while the connection is down (never once sent)."""
        insert = lambda: super(PatientAsyncpgClient, self).execute_insert(query, values)  # noqa: E731
        return await patiently(insert, once_only=True)

    async def execute_many(self, query: str, values: list) -> None:
        """executemany in its own transaction, retried as a whole."""
        return await patiently(lambda: super(PatientAsyncpgClient, self).execute_many(query, values))

    async def execute_query(self, query: str, values: list | None = None):
        """One statement, retried while the connection is down."""
        return await patiently(lambda: super(PatientAsyncpgClient, self).execute_query(query, values))

    async def execute_query_dict(self, query: str, values: list | None = None) -> list[dict]:
        """One SELECT as dicts, retried while the connection is down."""
        return await patiently(lambda: super(PatientAsyncpgClient, self).execute_query_dict(query, values))

    async def execute_script(self, query: str) -> None:
        """A script, retried while the connection is down."""
        return await patiently(lambda: super(PatientAsyncpgClient, self).execute_script(query))


client_class = PatientAsyncpgClient
