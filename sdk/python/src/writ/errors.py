"""Errors the SDK raises. Each says what happened and what to do about it;
callers that need the data (a decision ID, reasons, an approval ID) read
the attributes rather than the message."""

from __future__ import annotations

from typing import List, Optional


class WritError(Exception):
    """Any error answered by writ, or met on the way to it."""

    def __init__(self, message: str, *, status: int = 0, code: str = "", detail: str = "", hint: str = ""):
        super().__init__(f"{message}; {hint}" if hint else message)
        self.status = status  # HTTP status; 0 when writ could not be reached
        self.code = code  # writ's stable error code (docs/errors.md)
        self.detail = detail
        self.hint = hint


class TokenError(WritError):
    """The task token was refused (401): malformed, revoked, its task ended."""


class TokenExpiredError(TokenError):
    """The task token has expired: renew it."""

    def __init__(self, message: str, expired_at: Optional[float] = None, **kw):
        super().__init__(message, **kw)
        self.expired_at = expired_at  # Unix seconds


class DeniedError(WritError):
    """Policy denied the call (403). Nothing ran."""

    def __init__(self, tool: str, operation: str, resource: str, decision_id: str, reasons: List[str], message: Optional[str] = None):
        why = "; ".join(reasons) if reasons else "no reason given"
        super().__init__(message or f"writ denied {tool} ({operation} {resource}): {why} (decision {decision_id})", status=403, code="denied")
        self.tool, self.operation, self.resource = tool, operation, resource
        self.decision_id = decision_id
        self.reasons = list(reasons)


def approve_where(base_url: str, approval_id: str) -> str:
    """Where an approver decides a step-up."""
    return f"an approver runs 'writ approve {approval_id}' or decides it in the console at {base_url}/ui/inbox"


class ApprovalRequiredError(DeniedError):
    """The call needs a step-up approval not given (yet). Nothing ran;
    retrying exactly the same call once it is approved lets it through once."""

    def __init__(self, tool, operation, resource, decision_id, reasons, approval_id: str, base_url: str, waited: Optional[float] = None):
        why = "; ".join(reasons) if reasons else "policy requires an approval"
        state = "needs" if waited is None else f"was not approved within {round(waited)}s; it still needs"
        self.approval_id = approval_id
        self.approve_at = approve_where(base_url, approval_id)
        super().__init__(tool, operation, resource, decision_id, reasons,
                         f"writ: {tool} ({operation} {resource}) {state} step-up approval {approval_id}: {why} "
                         f"(decision {decision_id}); {self.approve_at}, then retry the same call")


class ApprovalDeniedError(DeniedError):
    """An approver denied the step-up, or it expired undecided. Nothing ran."""

    def __init__(self, tool, operation, resource, decision_id, approval_id: str, status: str, reason: str):
        why = f"denied by an approver{': ' + reason if reason else ''}" if status == "denied" else "expired before an approver decided it"
        self.approval_id = approval_id
        self.approval_status = status
        super().__init__(tool, operation, resource, decision_id, [reason] if reason else [],
                         f"writ: step-up approval {approval_id} for {tool} ({operation} {resource}) was {why} (decision {decision_id})")
