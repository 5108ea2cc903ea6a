"""The Python SDK against a real writ server: exchange (bearer and DPoP),
the decision API, @guard on sync and async functions with allowed, denied
and step-up calls, token files renewed under it, and its errors."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import writ  # noqa: E402
from harness import WritServer, of_type, require  # noqa: E402

AGENT = "spiffe://writ.dev/agent/py"
SCOPE = {"tools": ["kb.search"], "resources": ["kb://public/*"], "operations": ["read"], "data_class": "internal", "environments": ["dev"]}


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = WritServer()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def client(self, **kw):
        task = self.srv.open_task(AGENT, SCOPE)
        kw.setdefault("identity", writ.IdentityFile(self.srv.svid_file(AGENT)))
        c = writ.Client(self.srv.url, task=task, env={}, **kw)
        self.addCleanup(c.close)
        return task, c

    def approve_later(self, task, decision="approve", reason="once"):
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("id", self.srv.decide_step_up(task, decision, reason)))
        t.start()
        return t, out


class DecisionAPITest(ServerTest):
    def test_authorize_record_and_step_up_status(self):
        task, c = self.client()
        self.assertFalse(c.token().dpop)
        d = c.authorize("kb.search", "read", "kb://public/q3", {"q": "q3"})
        self.assertTrue(d.allow)
        self.assertTrue(d.action_id.startswith("act_"))
        self.assertGreater(c.record_result(d.action_id, "ok", {"hits": 3}), 0)

        d = c.authorize("mail.send", "send", "mailto:x@example.org")
        self.assertFalse(d.allow)
        self.assertIn("tool is not in the task scope", d.reasons)

        d = c.authorize("kb.search", "read", "kb://private/hr", {"q": "pay"})
        self.assertTrue(d.approval_required)
        st = c.step_up(d.approval_id)
        self.assertEqual((st.status, st.resource), ("pending", "kb://private/hr"))

        with self.assertRaises(writ.WritError) as e:
            c.record_result("act_nope", "ok")
        self.assertEqual((e.exception.status, e.exception.code), (404, "not_found"))


class GuardTest(ServerTest):
    def test_sync_guard(self):
        tp = writ.new_traceparent()
        task, c = self.client(traceparent=tp)
        ran = []

        @c.guard("kb.search", "read", "kb://{space}/{q}")
        def search(space: str, q: str) -> dict:
            ran.append(f"{space}/{q}")
            return {"hits": [q]}

        @c.guard("mail.send", "send", lambda to, body: f"mailto:{to}")
        def send_mail(to: str, body: str) -> None:
            ran.append("mail")

        self.assertEqual(search("public", "q3"), {"hits": ["q3"]})

        with self.assertRaises(writ.DeniedError) as e:
            send_mail("cfo@example.org", "hi")
        self.assertTrue(e.exception.decision_id.startswith("dec_"))
        self.assertIn("tool is not in the task scope", e.exception.reasons)
        self.assertRegex(str(e.exception), r"writ denied mail\.send \(send mailto:cfo@example\.org\): .*\(decision dec_")

        t, out = self.approve_later(task, "approve", "salaries, once")
        self.assertEqual(search("private", "salaries"), {"hits": ["salaries"]})
        t.join()

        t, _ = self.approve_later(task, "deny", "not this one")
        with self.assertRaises(writ.ApprovalDeniedError) as e:
            search("private", "ssn")
        t.join()
        self.assertEqual(e.exception.approval_status, "denied")
        self.assertIn("denied by an approver: not this one", str(e.exception))

        @c.guard("kb.search", "read", "kb://private/{q}", step_up_wait=0)
        def no_wait(q: str) -> None:
            ran.append("no_wait")
        with self.assertRaises(writ.ApprovalRequiredError) as e:
            no_wait("x")
        self.assertIn(f"writ approve {e.exception.approval_id}", str(e.exception))
        self.assertIn(f"{self.srv.url}/ui/inbox", str(e.exception))

        @c.guard("kb.search", "read", "kb://public/broken")
        def broken(q: str) -> None:
            raise RuntimeError("index offline")
        with self.assertRaisesRegex(RuntimeError, "index offline"):
            broken("y")

        self.assertEqual(ran, ["public/q3", "private/salaries"])
        events = self.srv.trace(task)
        authorized = of_type(events, "action.authorized")
        self.assertEqual([e["data"]["resource"] for e in authorized], ["kb://public/q3", "kb://private/salaries", "kb://public/broken"])
        self.assertEqual(authorized[1]["data"]["step_up"], out["id"])
        self.assertEqual([e["data"]["status"] for e in of_type(events, "action.completed")], ["ok", "ok", "error"])
        for e in authorized + of_type(events, "action.denied"):
            self.assertEqual(e.get("trace_id"), tp[3:35])

    def test_async_guard(self):
        task, c = self.client()

        @c.guard("kb.search", "read", "kb://{space}/{q}")
        async def search(space: str, q: str) -> dict:
            await asyncio.sleep(0)
            return {"hits": [q]}

        @c.guard("kb.search", "read", "kb://public/slow")
        async def slow() -> None:
            await asyncio.sleep(60)

        async def main():
            self.assertEqual(await search("public", "a"), {"hits": ["a"]})
            self.assertEqual(await asyncio.gather(search("public", "b"), search("public", "c")), [{"hits": ["b"]}, {"hits": ["c"]}])
            t, _ = self.approve_later(task)
            self.assertEqual(await search("private", "d"), {"hits": ["d"]})
            t.join()
            job = asyncio.ensure_future(slow())
            # Cancel once it runs (it is authorized by then).
            for _ in range(400):
                if of_type(self.srv.trace(task), "action.authorized")[-1]["data"]["resource"] == "kb://public/slow":
                    break
                await asyncio.sleep(0.05)
            job.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await job
        asyncio.run(main())
        statuses = [e["data"]["status"] for e in of_type(self.srv.trace(task), "action.completed")]
        self.assertEqual(sorted(statuses), ["cancelled", "ok", "ok", "ok", "ok"])


class TokenTest(ServerTest):
    def test_token_file_renewed_and_expired(self):
        task = self.srv.open_task(AGENT, SCOPE)
        path = os.path.join(self.srv.data_dir, "token")
        with open(path, "w") as f:
            f.write(self.srv.task_token(AGENT, task) + "\n")
        c = writ.Client(self.srv.url, env={"WRIT_TOKEN_FILE": path})
        self.addCleanup(c.close)
        first = c.token().token
        self.assertTrue(c.authorize("kb.search", "read", "kb://public/a").allow)
        with open(path + ".new", "w") as f:
            f.write(self.srv.task_token(AGENT, task) + "\n")
        os.replace(path + ".new", path)
        self.assertNotEqual(c.token().token, first)
        self.assertTrue(c.authorize("kb.search", "read", "kb://public/a").allow)
        jtis = {e["jti"] for e in of_type(self.srv.trace(task), "action.authorized")}
        self.assertEqual(len(jtis), 2)

        payload = base64.urlsafe_b64encode(json.dumps({"exp": int(time.time()) - 60}).encode()).rstrip(b"=").decode()
        with open(path, "w") as f:
            f.write(f"eyJhbGciOiJFZERTQSJ9.{payload}.c2ln\n")
        with self.assertRaisesRegex(writ.TokenExpiredError, r"expired at .*renew it: writ exec rewrites this file"):
            c.authorize("kb.search", "read", "kb://public/a")

    def test_ended_task(self):
        task = self.srv.open_task(AGENT, SCOPE)
        c = writ.Client(self.srv.url, token=self.srv.task_token(AGENT, task), env={})
        self.addCleanup(c.close)
        st, _ = self.srv.api("POST", f"/v1/tasks/{task}/complete", self.srv.human("alice", "requester"))
        self.assertEqual(st, 200)
        with self.assertRaises(writ.TokenError) as e:
            c.authorize("kb.search", "read", "kb://public/a")
        self.assertNotIsInstance(e.exception, writ.TokenExpiredError)
        self.assertEqual((e.exception.status, e.exception.code), (401, "invalid_token"))
        self.assertIn("the task has ended or its credentials were revoked", str(e.exception))

    def test_no_token(self):
        with self.assertRaisesRegex(writ.WritError, "run the agent under writ exec"):
            writ.Client(env={})

    def test_default_client_from_env(self):
        task = self.srv.open_task(AGENT, SCOPE)
        path = os.path.join(self.srv.data_dir, "token-default")
        with open(path, "w") as f:
            f.write(self.srv.task_token(AGENT, task))
        os.environ["WRIT_URL"], os.environ["WRIT_TOKEN_FILE"] = self.srv.url, path
        try:
            writ._default = None

            @writ.guard(tool="kb.search", operation="read", resource="kb://public/{q}")
            def search(q: str) -> str:
                return q.upper()
            self.assertEqual(search("abc"), "ABC")
        finally:
            writ.default_client().close()
            del os.environ["WRIT_URL"], os.environ["WRIT_TOKEN_FILE"]
            writ._default = None
        self.assertEqual(len(of_type(self.srv.trace(task), "action.completed")), 1)


class DPoPTest(ServerTest):
    def test_dpop_bound(self):
        try:
            import cryptography  # noqa: F401
            have = True
        except ImportError:
            have = False
        require(have, "the cryptography package (Debian: python3-cryptography)")
        task, c = self.client(identity=lambda: self.srv.svid(AGENT), dpop=True)
        self.assertTrue(c.token().dpop)

        @c.guard("kb.search", "read", "kb://public/{q}")
        def search(q: str) -> int:
            return len(q)
        self.assertEqual(search("abc"), 3)
        self.assertEqual(search("abcd"), 4)
        stolen = writ.Client(self.srv.url, token=c.token().token, env={})
        self.addCleanup(stolen.close)
        with self.assertRaises(writ.TokenError):
            stolen.authorize("kb.search", "read", "kb://public/x")
        events = self.srv.trace(task)
        self.assertEqual(of_type(events, "credential.issued")[0]["data"]["binding"], "dpop")
        self.assertEqual([e["data"]["status"] for e in of_type(events, "action.completed")], ["ok", "ok"])


if __name__ == "__main__":
    unittest.main()
