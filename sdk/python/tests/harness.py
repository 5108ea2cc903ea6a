"""A real writ server for the tests: the binary built from this repository
(or WRIT_BIN), `writ server --dev` on a port the kernel picks, in a data
directory of its own, with the dev issuer minting humans and agents."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
_bin = None


def require(ok: bool, what: str) -> None:
    """Skips the test when a tool it needs is missing; fails it when CI is set."""
    if ok:
        return
    if os.environ.get("CI"):
        raise AssertionError(f"{what} is missing, and CI is set: this test must run")
    raise unittest.SkipTest(f"{what} is missing")


def writ_binary() -> str:
    global _bin
    if _bin is None:
        if os.environ.get("WRIT_BIN"):
            _bin = os.environ["WRIT_BIN"]
        else:
            require(shutil.which("go") is not None, "the Go toolchain (to build writ), or WRIT_BIN")
            out = os.path.join(tempfile.mkdtemp(prefix="writ-bin-"), "writ")
            subprocess.run(["go", "build", "-o", out, "./cmd/writ"], cwd=REPO, check=True)
            _bin = out
    return _bin


def eventually(what, f, timeout=30.0):
    """Polls f until it returns something other than None, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        v = f()
        if v is not None:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


class WritServer:
    def __init__(self):
        self.bin = writ_binary()
        self.data_dir = tempfile.mkdtemp(prefix="writ-data-")
        self._tokens = {}
        self.proc = subprocess.Popen([self.bin, "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
                                      "--environment", "dev", "--log-format", "json"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        found = threading.Event()
        log = []

        def read():
            for line in iter(self.proc.stderr.readline, ""):
                log.append(line)
                if not found.is_set():
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("msg") == "writ server listening":
                        self.url = rec["url"]
                        found.set()
        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 60
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("writ server did not start:\n" + "".join(log))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
        self.proc.stderr.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def cli(self, *args) -> str:
        env = dict(os.environ, WRIT_URL=getattr(self, "url", ""))
        return subprocess.run([self.bin, *args], check=True, capture_output=True, text=True, env=env).stdout.strip()

    def human(self, name, role) -> str:
        if (name, role) not in self._tokens:
            self._tokens[(name, role)] = self.cli("dev", "token", "--human", name, "--role", role, "--data-dir", self.data_dir)
        return self._tokens[(name, role)]

    def svid(self, agent) -> str:
        return self.cli("dev", "svid", "--agent", agent, "--data-dir", self.data_dir)

    def svid_file(self, agent) -> str:
        path = os.path.join(self.data_dir, "svid-" + agent.rsplit("/", 1)[-1] + ".jwt")
        with open(path, "w") as f:
            f.write(self.svid(agent))
        return path

    def api(self, method, path, token, body=None):
        req = urllib.request.Request(self.url + path, method=method, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def open_task(self, agent, scope) -> str:
        st, d = self.api("POST", "/v1/tasks", self.human("alice", "requester"), {"agent": agent, "intent": "a test of the SDK", "scope": scope, "ttl": "15m"})
        assert st == 201 and d["state"] == "active", (st, d)
        return d["task_id"]

    def task_token(self, agent, task) -> str:
        return self.cli("token", task, "--svid", self.svid_file(agent))

    def decide_step_up(self, task, decision, reason) -> str:
        bob = self.human("bob", "approver")

        def pending():
            _, d = self.api("GET", "/v1/approvals", bob)
            return next((a["approval_id"] for a in d["approvals"] if a["task_id"] == task and a["kind"] == "step_up"), None)
        aid = eventually(f"a step-up of {task}", pending)
        st, d = self.api("POST", f"/v1/approvals/{aid}", bob, {"decision": decision, "reason": reason})
        assert st == 200, (st, d)
        return aid

    def trace(self, task) -> list:
        st, d = self.api("GET", f"/v1/tasks/{task}/trace", self.human("audrey", "auditor"))
        assert st == 200, (st, d)
        return [e["event"] if isinstance(e["event"], dict) else json.loads(e["event"]) for e in d["events"]]


def of_type(events, t):
    return [e for e in events if e["type"] == t]
