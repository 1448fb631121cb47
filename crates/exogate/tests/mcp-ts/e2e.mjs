// The official TypeScript MCP SDK (1.x) against exogate over streamable HTTP: lists the tools,
// calls one that succeeds (its structured content is checked against the output schema by the
// SDK) and one with an unknown company, which must come back as a readable tool error rather
// than an exception. Any validator warning (such as an unknown schema format) fails the run.
// Usage: node e2e.mjs <base_url> <token>. Prints one JSON line; exits non-zero on failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [baseUrl, token] = process.argv.slice(2);
const warnings = [];
for (const level of ["warn", "error"]) {
  console[level] = (...args) => warnings.push(args.map(String).join(" "));
}

function check(ok, message) {
  if (!ok) throw new Error(message);
}

async function main() {
  const transport = new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "exogate-ts-e2e", version: "0.0.0" });
  await client.connect(transport);
  check((client.getInstructions() ?? "").includes("get_approval_status"), "no instructions");
  const { tools } = await client.listTools();
  const companies = await client.callTool({ name: "list_companies", arguments: {} });
  check(!companies.isError, `list_companies failed: ${JSON.stringify(companies)}`);
  check(Array.isArray(companies.structuredContent?.companies), "no companies");
  const unknown = await client.callTool({
    name: "view_mailbox_permissions",
    arguments: { company: "wingtip", mailbox: "sales" },
  });
  const text = (unknown.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join(" ");
  await client.close();
  check(warnings.length === 0, `SDK warnings: ${warnings.join(" | ")}`);
  return {
    tools: tools.length,
    is_error: unknown.isError === true,
    text,
    code: unknown._meta?.code ?? null,
  };
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify({ ok: true, ...out }) + "\n");
  },
  (e) => {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e?.message ?? e) }) + "\n");
    process.exitCode = 1;
  },
);
