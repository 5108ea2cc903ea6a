"""writ for Python agents: task tokens (from writ exec, a file, or an
exchange of the agent's JWT-SVID, optionally DPoP-bound), the decision API
and a guard decorator that turns a tool function, sync or async, into
authorize → run → record.

    import writ

    @writ.guard(tool="kb.search", operation="read", resource="kb://public/{q}")
    def search(q: str) -> list: ...

The module-level guard and authorize use a client made from the
environment on first use (WRIT_URL and WRIT_TOKEN_FILE, as writ exec sets
them); writ.Client(...) makes one of your own."""

from __future__ import annotations

import functools
import threading
from typing import Optional

from .client import Client, Decision, StepUp, new_traceparent, valid_traceparent
from .errors import (ApprovalDeniedError, ApprovalRequiredError, DeniedError, TokenError, TokenExpiredError,
                     WritError)
from .tokens import ExchangedToken, FileToken, IdentityFile, StaticToken, TaskToken, exchange_token

__all__ = ["Client", "Decision", "StepUp", "WritError", "TokenError", "TokenExpiredError", "DeniedError",
           "ApprovalRequiredError", "ApprovalDeniedError", "FileToken", "StaticToken", "ExchangedToken", "IdentityFile",
           "TaskToken", "exchange_token", "guard", "authorize", "record_result", "default_client", "new_traceparent",
           "valid_traceparent"]

_default: Optional[Client] = None
_lock = threading.Lock()


def default_client() -> Client:
    """The client made from the environment (WRIT_URL, WRIT_TOKEN_FILE or WRIT_TOKEN)."""
    global _default
    with _lock:
        if _default is None:
            _default = Client()
        return _default


def guard(tool: str, operation: str, resource, **kw):
    """Client.guard on the default client, made when the function is first called."""
    def decorate(fn):
        cell = {}

        def guarded_fn():
            if "g" not in cell:
                cell["g"] = default_client().guard(tool, operation, resource, **kw)(fn)
            return cell["g"]

        import inspect
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def call_async(*a, **k):
                return await guarded_fn()(*a, **k)
            return call_async

        @functools.wraps(fn)
        def call(*a, **k):
            return guarded_fn()(*a, **k)
        return call
    return decorate


def authorize(tool: str, operation: str, resource: str, arguments=None, data_class=None) -> Decision:
    """Client.authorize on the default client."""
    return default_client().authorize(tool, operation, resource, arguments, data_class)


def record_result(action_id: str, status: str = "ok", output=None) -> int:
    """Client.record_result on the default client."""
    return default_client().record_result(action_id, status, output)
