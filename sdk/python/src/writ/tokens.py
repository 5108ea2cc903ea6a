"""Where the task token comes from: given as it is, read from a file that
`writ exec` keeps renewed (WRIT_TOKEN_FILE), or exchanged by the SDK for the
agent's JWT-SVID (RFC 8693)."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable, Optional, Union

from .errors import TokenError, TokenExpiredError, WritError


@dataclass
class TaskToken:
    token: str
    dpop: bool  # sent as "Authorization: DPoP" with a proof
    expires_at: Optional[float] = None  # exp, Unix seconds


def jwt_claims(token: str) -> dict:
    """The claims of a JWT, read without verifying it (writ verifies it)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("the task token is not a compact JWT",
                         hint="pass the access_token of POST /oauth2/token (writ token <task> --svid FILE), or run under writ exec")
    try:
        c = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("the task token is not a JWT: its payload is not base64url JSON") from None
    return c if isinstance(c, dict) else {}


def task_token(raw: str) -> TaskToken:
    raw = raw.strip()
    c = jwt_claims(raw)
    exp = c.get("exp")
    cnf = c.get("cnf")
    return TaskToken(raw, isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str), float(exp) if isinstance(exp, (int, float)) else None)


def _expired(t: TaskToken) -> bool:
    return t.expires_at is not None and t.expires_at <= time.time()


def _when(t: TaskToken) -> str:
    return "" if t.expires_at is None else " at " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t.expires_at))


class StaticToken:
    """A token given as it is (an argument, or WRIT_TOKEN): it cannot be renewed."""

    def __init__(self, token: str, source: str = "the token passed to writ"):
        self._tok = task_token(token)
        self._source = source

    def current(self) -> TaskToken:
        if _expired(self._tok):
            raise self._expired()
        return self._tok

    def renew(self, refused: TaskToken) -> TaskToken:
        raise self._expired()

    def _expired(self) -> TokenExpiredError:
        return TokenExpiredError(f"{self._source} expired{_when(self._tok)}", self._tok.expires_at, code="invalid_token",
                                 hint="renew it: exchange the agent's JWT-SVID again (writ token <task-id> --svid FILE), "
                                      "or run the agent under writ exec, which keeps WRIT_TOKEN_FILE renewed")


class FileToken:
    """A token in a file, read again whenever the file changes: writ exec
    replaces WRIT_TOKEN_FILE with a renewed token before the old one expires.
    A stat per call is all it costs while the file stays the same."""

    def __init__(self, path: str):
        self.path = path
        self._stamp = None
        self._tok: Optional[TaskToken] = None
        self._lock = threading.Lock()

    def current(self) -> TaskToken:
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise TokenError(f"cannot read the task token file {self.path}: {e.strerror}",
                             hint="writ exec writes it while the command it runs is alive; run the agent under writ exec, or pass the token another way") from e
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp or self._tok is None:
                with open(self.path, encoding="utf-8") as f:
                    self._tok = task_token(f.read())
                self._stamp = stamp
            tok = self._tok
        if _expired(tok):
            raise self._expired(tok)
        return tok

    def renew(self, refused: TaskToken) -> TaskToken:
        tok = self.current()
        if tok.token != refused.token:
            return tok
        raise self._expired(tok)

    def _expired(self, t: TaskToken) -> TokenExpiredError:
        return TokenExpiredError(f"the task token in {self.path} expired{_when(t)}", t.expires_at, code="invalid_token",
                                 hint="renew it: writ exec rewrites this file before the token expires, so check that writ exec is "
                                      "still running and can reach writ (its log says why a refresh failed); or exchange again "
                                      "with writ token <task-id> --svid FILE")


#: The agent's identity token: a string, a path wrapped in IdentityFile, or a function.
Identity = Union[str, "IdentityFile", Callable[[], str]]


@dataclass
class IdentityFile:
    """An identity token (JWT-SVID) in a file, read again at each exchange."""
    path: str


def _identity(src) -> str:
    if callable(src):
        return src().strip()
    if isinstance(src, IdentityFile):
        try:
            with open(src.path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as e:
            raise WritError(f"cannot read the agent's identity token {src.path}: {e.strerror}",
                            hint="point identity at the JWT-SVID file the SPIFFE helper keeps (for a dev server: writ dev svid --agent ID > FILE)") from e
    return str(src).strip()


def exchange_token(url: str, task: str, identity, dpop=None, resource: Optional[str] = None, timeout: float = 30) -> tuple:
    """POST /oauth2/token: the agent's identity exchanged for a task token.
    Returns (response dict, TaskToken)."""
    endpoint = f"{url}/oauth2/token"
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": _identity(identity),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "scope": f"task:{task}"}
    if resource:
        form["resource"] = resource
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if dpop is not None:
        headers["DPoP"] = dpop.proof("POST", endpoint)
    req = urllib.request.Request(endpoint, data=urllib.parse.urlencode(form).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            body = json.loads(e.read() or b"{}")
        except ValueError:
            body = {}
        code = str(body.get("error", f"http_{e.code}"))
        detail = str(body.get("error_description", body.get("detail", "")))
        hint = {"invalid_grant": f"the task must be active and name this agent; check it with writ task get {task}",
                "invalid_dpop_proof": "the DPoP proof was refused: check the clock, and that the URL writ is reached at is its public_url"
                }.get(code, "see docs/credentials.md, Errors")
        raise WritError(f"writ refused the token exchange for task {task}: {code}: {detail}", status=e.code, code=code, detail=detail, hint=hint) from None
    except (urllib.error.URLError, OSError) as e:
        raise WritError(f"cannot reach writ at {url}: {e}", hint="check WRIT_URL and that writ server is running") from e
    tok = task_token(body["access_token"])
    tok.dpop = body.get("token_type") == "DPoP"
    if tok.expires_at is None and body.get("expires_in"):
        tok.expires_at = time.time() + float(body["expires_in"])
    return body, tok


class ExchangedToken:
    """A token the SDK exchanges itself, and exchanges again when two thirds
    of its life have passed or writ refuses it as expired."""

    def __init__(self, url: str, task: str, identity, dpop=None, resource: Optional[str] = None):
        self._args = (url, task, identity, dpop, resource)
        self._tok: Optional[TaskToken] = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> TaskToken:
        tok = self._tok
        if tok is not None and time.time() < self._renew_at:
            return tok
        with self._lock:
            if self._tok is None or time.time() >= self._renew_at:
                self._exchange()
            return self._tok

    def renew(self, refused: TaskToken) -> TaskToken:
        with self._lock:
            if self._tok is None or self._tok.token == refused.token:
                self._exchange()
            return self._tok

    def _exchange(self) -> None:
        body, tok = exchange_token(*self._args)
        life = max(float(body.get("expires_in") or 1), 1.0)
        self._tok, self._renew_at = tok, time.time() + life * 2 / 3
