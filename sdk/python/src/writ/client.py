"""The client of writ's decision API: authorize a call, record its result,
learn what became of a step-up, and guard a tool function with all three."""

from __future__ import annotations

import asyncio
import functools
import http.client
import inspect
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Union
from urllib.parse import quote, urlsplit

from .errors import (ApprovalDeniedError, ApprovalRequiredError, DeniedError, TokenError, TokenExpiredError,
                     WritError)
from .tokens import ExchangedToken, FileToken, StaticToken, TaskToken

DEFAULT_URL = "http://127.0.0.1:7780"
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def valid_traceparent(s: Optional[str]) -> bool:
    """Whether s is a version-00 W3C traceparent with non-zero IDs."""
    m = _TRACEPARENT.match(s or "")
    return bool(m) and set(m.group(1)) != {"0"} and set(m.group(2)) != {"0"}


def new_traceparent() -> str:
    """A traceparent that starts a new trace (sampled)."""
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


@dataclass
class Decision:
    """writ's answer to POST /v1/authorize."""
    allow: bool
    decision_id: str
    action_id: Optional[str] = None
    reasons: List[str] = field(default_factory=list)
    approval_required: bool = False
    approval_id: Optional[str] = None
    record_output: bool = True
    redact: List[str] = field(default_factory=list)


@dataclass
class StepUp:
    """What became of a step-up approval request: status is pending, granted,
    used, denied (reason is the approver's) or expired."""
    approval_id: str
    task_id: str
    status: str
    expires_at: str
    approvals_required: int
    approvals_given: int
    reason: str
    tool: str
    operation: str
    resource: str


class Client:
    """A client of writ's decision API, for one task.

    The task token comes from, in order: `token` (a string or a source with
    current() and renew()), `token_file`, `identity` with `task` (exchanged
    by the SDK, DPoP-bound with `dpop=True`), then WRIT_TOKEN_FILE (as writ
    exec sets it) and WRIT_TOKEN from the environment."""

    def __init__(self, url: Optional[str] = None, *, token=None, token_file: Optional[str] = None, identity=None,
                 task: Optional[str] = None, dpop=False, resource: Optional[str] = None, step_up_wait: float = 300.0,
                 traceparent: Union[str, Callable[[], Optional[str]], None] = None, timeout: float = 30.0,
                 env: Optional[Mapping[str, str]] = None):
        env = os.environ if env is None else env
        self.url = (url or env.get("WRIT_URL") or DEFAULT_URL).rstrip("/")
        self.step_up_wait = step_up_wait
        self.timeout = timeout
        self._trace = traceparent if traceparent is not None else env.get("TRACEPARENT")
        self._dpop = None
        if dpop:
            from .dpop import DPoPKey
            self._dpop = dpop if isinstance(dpop, DPoPKey) else DPoPKey()
        if isinstance(token, str):
            self._tokens = StaticToken(token)
        elif token is not None:
            self._tokens = token
        elif token_file:
            self._tokens = FileToken(token_file)
        elif identity is not None:
            task = task or env.get("WRIT_TASK")
            if not task:
                raise WritError("exchanging the agent identity needs the task", hint="pass task=, or set WRIT_TASK")
            self._tokens = ExchangedToken(self.url, task, identity, self._dpop, resource)
        elif env.get("WRIT_TOKEN_FILE"):
            self._tokens = FileToken(env["WRIT_TOKEN_FILE"])
        elif env.get("WRIT_TOKEN"):
            self._tokens = StaticToken(env["WRIT_TOKEN"], "the task token in WRIT_TOKEN")
        else:
            raise WritError("no task token", hint="run the agent under writ exec (it sets WRIT_TOKEN_FILE), "
                                                  "or pass token=, token_file=, or identity= and task=")
        u = urlsplit(self.url)
        self._scheme, self._netloc, self._base_path = u.scheme, u.netloc, u.path
        self._local = threading.local()
        self._conns: List[http.client.HTTPConnection] = []
        self._conns_lock = threading.Lock()

    def close(self) -> None:
        """Closes the connections to writ (each thread keeps one)."""
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- tokens and requests -------------------------------------------

    def token(self) -> TaskToken:
        """The task token to use now."""
        return self._tokens.current()

    def auth_headers(self, method: str, url: str, tok: Optional[TaskToken] = None) -> Dict[str, str]:
        """Headers that authenticate one request with the task token (and a
        fresh DPoP proof for a bound one)."""
        tok = tok or self._tokens.current()
        if not tok.dpop:
            return {"Authorization": f"Bearer {tok.token}"}
        if self._dpop is None:
            raise TokenError("the task token is DPoP-bound, but this client holds no DPoP key",
                             hint="use the client that exchanged it, or pass its key as dpop=")
        return {"Authorization": f"DPoP {tok.token}", "DPoP": self._dpop.proof(method, url, tok.token)}

    def _conn(self, fresh: bool = False) -> http.client.HTTPConnection:
        c = getattr(self._local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            c = cls(self._netloc, timeout=self.timeout)
            self._local.conn = c
            with self._conns_lock:
                self._conns.append(c)
        return c

    def _traceparent(self, override: Optional[str]) -> Optional[str]:
        v = override if override is not None else (self._trace() if callable(self._trace) else self._trace)
        return v if valid_traceparent(v) else None

    def _send(self, method: str, path: str, body: Any = None, ok=(), traceparent: Optional[str] = None):
        url = self.url + path
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        tok = self._tokens.current()
        for attempt in range(2):
            headers = self.auth_headers(method, url, tok)
            if payload is not None:
                headers["Content-Type"] = "application/json"
            tp = self._traceparent(traceparent)
            if tp:
                headers["traceparent"] = tp
            status, raw = self._roundtrip(method, self._base_path + path, payload, headers)
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                raise WritError(f"writ answered {method} {path} with {status} and a body that is not JSON", status=status) from None
            if 200 <= status < 300 or status in ok:
                return status, data
            if status == 401 and attempt == 0 and "expired" in str(data.get("detail", "")).lower():
                try:
                    tok = self._tokens.renew(tok)
                except TokenExpiredError:
                    raise
                except WritError as e:
                    raise _token_error(data) from e
                continue
            if status == 401:
                raise _token_error(data)
            raise _api_error(status, data, f"{method} {path}")
        raise AssertionError("unreachable")

    def _roundtrip(self, method, path, payload, headers):
        # A kept-alive connection the server has closed fails on reuse; one
        # new connection is tried then.
        for fresh in (False, True):
            conn = self._conn(fresh)
            try:
                conn.request(method, path, body=payload, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest) as e:
                conn.close()
                self._local.conn = None
                if fresh:
                    raise WritError(f"cannot reach writ at {self.url}: {e}", hint="check WRIT_URL and that writ server is running") from e
            except OSError as e:
                conn.close()
                self._local.conn = None
                raise WritError(f"cannot reach writ at {self.url}: {e}", hint="check WRIT_URL and that writ server is running") from e
        raise AssertionError("unreachable")

    # -- the decision API ----------------------------------------------

    def authorize(self, tool: str, operation: str, resource: str, arguments: Optional[dict] = None,
                  data_class: Optional[str] = None, traceparent: Optional[str] = None) -> Decision:
        """POST /v1/authorize: may the task's agent make this call? A denial is
        a Decision, not an error."""
        body: Dict[str, Any] = {"tool": tool, "operation": operation, "resource": resource}
        if arguments is not None:
            body["arguments"] = arguments
        if data_class:
            body["data_class"] = data_class
        status, d = self._send("POST", "/v1/authorize", body, ok=(403,), traceparent=traceparent)
        if status == 403 and not isinstance(d.get("allow"), bool):
            raise _api_error(status, d, "authorize")
        return Decision(allow=d.get("allow") is True, decision_id=str(d.get("decision_id", "")), action_id=d.get("action_id"),
                        reasons=[str(r) for r in d.get("reasons") or []], approval_required=d.get("approval_required") is True,
                        approval_id=d.get("approval_id"), record_output=d.get("record_output") is not False,
                        redact=[str(r) for r in d.get("redact") or []])

    def record_result(self, action_id: str, status: str = "ok", output: Any = None, traceparent: Optional[str] = None) -> int:
        """POST /v1/actions/{id}/result: what an allowed call did (status ok,
        error or cancelled). Returns the ledger index of the record."""
        body: Dict[str, Any] = {"status": status}
        if output is not None:
            body["output"] = output
        _, d = self._send("POST", f"/v1/actions/{quote(action_id, safe='')}/result", body, traceparent=traceparent)
        return int(d.get("ledger_index", 0))

    def step_up(self, approval_id: str) -> StepUp:
        """GET /v1/approvals/{id}/status: what became of a step-up of this task."""
        _, d = self._send("GET", f"/v1/approvals/{quote(approval_id, safe='')}/status")
        return StepUp(approval_id=d["approval_id"], task_id=d["task_id"], status=d["status"], expires_at=d["expires_at"],
                      approvals_required=int(d.get("approvals_required", 0)), approvals_given=int(d.get("approvals_given", 0)),
                      reason=d.get("reason", ""), tool=d.get("tool", ""), operation=d.get("operation", ""), resource=d.get("resource", ""))

    def wait_for_approval(self, approval_id: str, timeout: Optional[float] = None) -> StepUp:
        """Waits until an approver decides the step-up, at most timeout seconds
        (default step_up_wait), polling with backoff from a quarter second to
        five seconds. Returns the status it ended in: pending when the wait
        ran out."""
        deadline = time.monotonic() + (self.step_up_wait if timeout is None else timeout)
        delay = 0.25
        while True:
            st = self.step_up(approval_id)
            left = deadline - time.monotonic()
            if st.status != "pending" or left <= 0:
                return st
            time.sleep(min(delay, left))
            delay = min(delay * 1.5, 5.0)

    def decide(self, tool, operation, resource, arguments=None, data_class=None, step_up_wait=None, traceparent=None) -> Decision:
        """Authorizes a call, waiting for a step-up when one is asked: the
        allowing decision, or DeniedError, ApprovalDeniedError or
        ApprovalRequiredError."""
        wait = self.step_up_wait if step_up_wait is None else step_up_wait
        d = self.authorize(tool, operation, resource, arguments, data_class, traceparent)
        if d.allow:
            return d
        if not (d.approval_required and d.approval_id):
            raise DeniedError(tool, operation, resource, d.decision_id, d.reasons)
        if wait <= 0:
            raise ApprovalRequiredError(tool, operation, resource, d.decision_id, d.reasons, d.approval_id, self.url)
        st = self.wait_for_approval(d.approval_id, wait)
        if st.status == "pending":
            raise ApprovalRequiredError(tool, operation, resource, d.decision_id, d.reasons, d.approval_id, self.url, waited=wait)
        if st.status in ("denied", "expired"):
            raise ApprovalDeniedError(tool, operation, resource, d.decision_id, d.approval_id, st.status, st.reason)
        again = self.authorize(tool, operation, resource, arguments, data_class, traceparent)
        if again.allow:
            return again
        if again.approval_required and again.approval_id:
            raise ApprovalRequiredError(tool, operation, resource, again.decision_id, again.reasons, again.approval_id, self.url)
        raise DeniedError(tool, operation, resource, again.decision_id, again.reasons)

    # -- guard ----------------------------------------------------------

    def guard(self, tool: str, operation: str, resource: Union[str, Callable[..., str]], *,
              arguments: Optional[Callable[..., Optional[dict]]] = None, data_class: Optional[str] = None,
              step_up_wait: Optional[float] = None, output: Optional[Callable[[Any], Any]] = None):
        """A decorator: each call of the function (sync or async) is authorized
        by writ first, runs only when allowed, and has its result or error
        recorded. `resource` is a string, a format string filled from the
        call's arguments by name ("kb://{space}/{q}"), or a function of the
        arguments. Policy sees the arguments by name unless `arguments` says
        otherwise. A result writ could not record is not returned."""

        def decorate(fn):
            sig = inspect.signature(fn)

            def plan(args, kwargs):
                bound = sig.bind(*args, **kwargs)
                bound.apply_defaults()
                named = {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")}
                if callable(resource):
                    res = resource(*args, **kwargs)
                elif "{" in resource:
                    res = resource.format(**named)
                else:
                    res = resource
                argv = arguments(*args, **kwargs) if arguments else _jsonable(named)
                return res, argv, self._traceparent(None)

            def finish(d: Decision, res: str, tp, result: Any, err: Optional[BaseException]):
                if err is None:
                    out = _jsonable(output(result) if output else result)
                    self._record_or_raise(tool, d.action_id, "ok", out, tp, None)
                else:
                    status = "cancelled" if isinstance(err, asyncio.CancelledError) else "error"
                    self._record_or_raise(tool, d.action_id, status, {"error": str(err) or type(err).__name__}, tp, err)

            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def guarded_async(*args, **kwargs):
                    res, argv, tp = plan(args, kwargs)
                    d = await asyncio.to_thread(self.decide, tool, operation, res, argv, data_class, step_up_wait, tp)
                    try:
                        result = await fn(*args, **kwargs)
                    except BaseException as e:
                        await asyncio.to_thread(finish, d, res, tp, None, e)
                        raise
                    await asyncio.to_thread(finish, d, res, tp, result, None)
                    return result
                return guarded_async

            @functools.wraps(fn)
            def guarded(*args, **kwargs):
                res, argv, tp = plan(args, kwargs)
                d = self.decide(tool, operation, res, argv, data_class, step_up_wait, tp)
                try:
                    result = fn(*args, **kwargs)
                except BaseException as e:
                    finish(d, res, tp, None, e)
                    raise
                finish(d, res, tp, result, None)
                return result
            return guarded

        return decorate

    def _record_or_raise(self, tool, action_id, status, output, tp, tool_error):
        try:
            self.record_result(action_id, status, output, tp)
        except WritError as e:
            what = "ran, but" if tool_error is None else f"failed ({tool_error}), and"
            hint = "the result is withheld, since the evidence does not hold it" if tool_error is None else "the failure is not in the evidence"
            raise WritError(f"{tool} {what} writ could not record its result (action {action_id}): {e}", hint=hint) from e


def _jsonable(v: Any) -> Any:
    """v as JSON can carry it: values JSON cannot encode become their str()."""
    if v is None:
        return None
    try:
        json.dumps(v)
        return v
    except (TypeError, ValueError):
        return json.loads(json.dumps(v, default=str))


def _token_error(d: dict) -> TokenError:
    detail = str(d.get("detail", ""))
    code = str(d.get("error", "invalid_token"))
    if "expired" in detail.lower():
        return TokenExpiredError(f"writ refused the task token: {detail}", status=401, code=code, detail=detail,
                                 hint="renew it: run the agent under writ exec (it keeps WRIT_TOKEN_FILE renewed), or exchange the agent's identity again")
    hint = "see docs/credentials.md, What writ checks on every call"
    if re.search(r"revoked|no longer valid|ended", detail, re.I):
        hint = "the task has ended or its credentials were revoked: stop acting under it; a new task must be opened"
    elif code == "invalid_dpop_proof":
        hint = "the DPoP proof was refused: check the clock, and that the URL writ is reached at is its credentials.public_url"
    elif code == "unauthorized":
        hint = "send a task token: run the agent under writ exec, or exchange its identity with POST /oauth2/token"
    return TokenError(f"writ refused the task token: {code}: {detail}", status=401, code=code, detail=detail, hint=hint)


def _api_error(status: int, d: dict, what: str) -> WritError:
    code = str(d.get("error", f"http_{status}"))
    detail = str(d.get("detail", ""))
    hint = {503: "writ could not record durably, so nothing was allowed; retry later", 429: "rate limited; retry after a while"}.get(status, "see docs/errors.md")
    return WritError(f"writ refused {what}: {code}: {detail}", status=status, code=code, detail=detail, hint=hint)
