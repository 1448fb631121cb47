// The official TypeScript MCP SDK (1.x) against exogate over streamable HTTP: lists the tools,
// calls one that succeeds (its structured content is checked against the output schema by the
// SDK) and three that fail (an unknown company, a company whose Exchange Admin is not ready, an
// unknown argument), each of which must come back as a readable tool error rather than an
// exception. Any validator warning (such as an unknown schema format) fails the run.
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
  // Each error case must come back as a result the agent can read, never as a thrown error.
  const failures = {};
  for (const [name, args] of [
    ["unknown_company", { company: "wingtip", mailbox: "sales" }],
    ["not_configured", { company: "fabrikam", mailbox: "sales" }],
    ["unknown_argument", { company: "contoso", mailbox: "sales", colour: "blue" }],
  ]) {
    const r = await client.callTool({ name: "view_mailbox_permissions", arguments: args });
    failures[name] = {
      is_error: r.isError === true,
      text: (r.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join(" "),
      code: r._meta?.code ?? null,
    };
  }
  await client.close();
  check(warnings.length === 0, `SDK warnings: ${warnings.join(" | ")}`);
  const unknown = failures.unknown_company;
  return {
    tools: tools.length,
    is_error: unknown.is_error,
    text: unknown.text,
    code: unknown.code,
    failures,
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
