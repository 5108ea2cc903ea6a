// An MCP agent as the official TypeScript SDK makes one: it connects to a
// Streamable HTTP endpoint with a bearer token, lists the tools, and calls
// each tool named on the command line with the given JSON arguments,
// asking for progress notifications. It prints one JSON object with what
// it saw (each call's result and progress); errors are reported in it.
//
// usage: node client.mjs <url> <token> <tool> <json-args> [<tool> <json-args>…]
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, ...calls] = process.argv.slice(2);
const out = { tools: [], calls: [] };
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "writ-e2e-ts", version: "1.0.0" });
try {
  await client.connect(transport);
  out.protocolVersion = transport.protocolVersion ?? null;
  out.sessionId = transport.sessionId ?? null;
  const listed = await client.listTools();
  out.tools = listed.tools.map((t) => t.name);
  for (let i = 0; i + 1 < calls.length; i += 2) {
    const progress = [];
    try {
      const res = await client.callTool({ name: calls[i], arguments: JSON.parse(calls[i + 1]) }, undefined, {
        onprogress: (p) => progress.push(p),
      });
      out.calls.push({ tool: calls[i], result: res, progress });
    } catch (e) {
      out.calls.push({ tool: calls[i], error: String(e?.message ?? e), progress });
    }
  }
} catch (e) {
  out.error = String(e?.message ?? e);
} finally {
  await client.close().catch(() => {});
}
process.stdout.write(JSON.stringify(out) + "\n");
