"""The errors that say "try again in a moment", not "this is wrong", for tasks to retry on.

The builtin ConnectionError is none of them: Django wraps the driver's errors in its own
classes, kombu wraps the broker's, and redis-py's ConnectionError is not the builtin one."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# The database restarted, failed over or dropped the connection (OperationalError,
# InterfaceError "connection already closed"), or gave up on a deadlock or a serialization
# conflict (psycopg's are OperationalErrors too). Not IntegrityError, DataError or
# ProgrammingError: those fail the same way every time.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)

# Redis, the broker, down or slow while a task hands work on: publishing raises kombu's
# OperationalError; redis-py's own errors where Redis is reached directly.
BROKER_UNAVAILABLE: tuple[type[Exception], ...] = (
    BrokerOperationalError,
    RedisConnectionError,
    RedisTimeoutError,
)
