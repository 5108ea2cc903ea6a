// An MCP agent made with the official TypeScript SDK whose user can be
// sent to a page (URL-mode elicitation): it declares elicitation.url,
// and when asked, has the approver decide on writ's API (as the user would
// on the page), then accepts. It calls one tool and prints one JSON object:
// the call's result, the elicitations asked and the completions notified.
//
// usage: node approve.mjs <mcp-url> <token> <writ-url> <approver-token> <decision> <tool> <json-args>
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema, ElicitationCompleteNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, token, writ, approver, decision, tool, args] = process.argv.slice(2);
const out = { elicitations: [], completed: [] };
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "writ-e2e-ts-approving", version: "1.0.0" }, { capabilities: { elicitation: { url: {} } } });
client.setRequestHandler(ElicitRequestSchema, async (req) => {
  out.elicitations.push(req.params);
  const id = req.params.elicitationId;
  // The decision comes while the call waits, as an approver's would.
  setTimeout(() => {
    fetch(`${writ}/v1/approvals/${id}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${approver}`, "Content-Type": "application/json" },
      body: JSON.stringify({ decision, reason: "from the TypeScript agent's user" }),
    }).catch((e) => out.errors?.push(String(e)));
  }, 50);
  return { action: "accept" };
});
client.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => {
  out.completed.push(n.params.elicitationId);
});
try {
  await client.connect(transport);
  out.protocolVersion = transport.protocolVersion ?? null;
  out.result = await client.callTool({ name: tool, arguments: JSON.parse(args) });
  // The completion notification may trail the result by a moment.
  for (let i = 0; i < 50 && out.completed.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
} catch (e) {
  out.error = String(e?.message ?? e);
} finally {
  await client.close().catch(() => {});
}
process.stdout.write(JSON.stringify(out) + "\n");
