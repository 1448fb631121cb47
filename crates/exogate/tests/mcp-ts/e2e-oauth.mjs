// The official TypeScript MCP SDK (1.x) signing in to exogate with its own OAuth client support
// over streamable HTTP: the 401 leads it to the protected resource metadata and the
// authorization server metadata, it registers (Dynamic Client Registration: a loopback client
// has no https metadata document URL), and opens the authorization URL with PKCE S256 and the
// resource. Where a browser would open that URL, this script signs in with the login form,
// submits the consent form, and hands the code from the redirect to `transport.finishAuth`.
// Then the whole story: list the tools, view Full Access on `sales` at Contoso, ask for
// `grant_send_as` (pending), print `{"step":"asked",...}` and wait for a line on stdin (the test
// has a person approve), then read the request's status.
// Usage: node e2e-oauth.mjs <base_url> <user> <password>. Prints JSON lines; the last one is the
// result; exits non-zero on failure.
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [baseUrl, user, password] = process.argv.slice(2);
const redirectUrl = "http://127.0.0.1:4711/callback";
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

function check(ok, message) {
  if (!ok) throw new Error(message);
}

function unescapeHtml(s) {
  return s
    .replace(/&#x([0-9a-fA-F]+);/g, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#([0-9]+);/g, (_, d) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

// What a person does in the browser the SDK sends to `url`: sign in, then allow.
async function signInAndConsent(url) {
  const first = await fetch(url, { redirect: "manual" });
  check(first.status === 303, `authorize without a session: HTTP ${first.status}`);
  const login = new URL(first.headers.get("location"), baseUrl);
  check(login.pathname === "/login", `not sent to sign in: ${login}`);
  const next = login.searchParams.get("next");
  const signedIn = await fetch(`${baseUrl}/login`, {
    method: "POST",
    redirect: "manual",
    body: new URLSearchParams({ user, password, next }),
  });
  check(signedIn.status === 303, `login: HTTP ${signedIn.status}`);
  check(signedIn.headers.get("location") === next, "login did not lead back to the consent");
  const cookie = signedIn.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .find((c) => c.startsWith("exogate_session="));
  check(cookie, "no session cookie");
  const page = await fetch(new URL(next, baseUrl), { headers: { cookie } });
  const html = await page.text();
  check(page.status === 200, `consent page: HTTP ${page.status}`);
  check(html.includes("exogate-ts-oauth-e2e"), "the consent page does not name the agent");
  check(html.includes("a person must approve"), "the consent page does not say what it may do");
  const form = new URLSearchParams();
  const consentForm = html.slice(html.indexOf('action="/oauth/authorize"'));
  for (const m of consentForm.matchAll(/<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g)) {
    form.append(m[1], unescapeHtml(m[2]));
  }
  form.append("decision", "approve");
  const decided = await fetch(`${baseUrl}/oauth/authorize`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie, origin: baseUrl },
    body: form,
  });
  check(decided.status === 303, `consent: HTTP ${decided.status}`);
  const back = new URL(decided.headers.get("location"));
  check(back.origin + back.pathname === redirectUrl, `redirected elsewhere: ${back}`);
  return back.searchParams.get("code");
}

class Provider {
  constructor() {
    this.info = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.authorizationUrl = undefined;
    this.code = undefined;
  }
  get redirectUrl() {
    return redirectUrl;
  }
  get clientMetadata() {
    return {
      client_name: "exogate-ts-oauth-e2e",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url) {
    this.authorizationUrl = url;
    this.code = await signInAndConsent(url);
  }
}

async function main() {
  const provider = new Provider();
  const mcpUrl = new URL(`${baseUrl}/mcp`);
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  let unauthorized = false;
  try {
    await new Client({ name: "exogate-ts-oauth-e2e", version: "0.0.0" }).connect(first);
  } catch (e) {
    unauthorized = e instanceof UnauthorizedError;
    if (!unauthorized) throw e;
  }
  check(unauthorized, "the first connection was not refused for want of a token");
  check(provider.code, "no code came back from the consent");
  await first.finishAuth(provider.code);
  check(provider.saved?.access_token && provider.saved?.refresh_token, "no tokens");

  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  const client = new Client({ name: "exogate-ts-oauth-e2e", version: "0.0.0" });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const fullAccess = await client.callTool({
    name: "view_mailbox_permissions",
    arguments: { company: "contoso", mailbox: "sales" },
  });
  check(!fullAccess.isError, `view failed: ${JSON.stringify(fullAccess)}`);
  const asked = await client.callTool({
    name: "grant_send_as",
    arguments: { company: "contoso", mailbox: "support", trustee: "carol" },
  });
  check(!asked.isError, `ask failed: ${JSON.stringify(asked)}`);
  const requestId = asked.structuredContent?.request_id;
  process.stdout.write(JSON.stringify({ step: "asked", request_id: requestId }) + "\n");
  const go = await lines.next();
  check(!go.done, "stdin closed before the approval");
  const status = await client.callTool({
    name: "get_approval_status",
    arguments: { request_id: requestId },
  });
  check(!status.isError, `status failed: ${JSON.stringify(status)}`);
  await client.close();
  const auth = provider.authorizationUrl;
  return {
    client_id: provider.info?.client_id ?? null,
    code_challenge_method: auth?.searchParams.get("code_challenge_method") ?? null,
    resource: auth?.searchParams.get("resource") ?? null,
    tools: tools.length,
    full_access: fullAccess.structuredContent?.permission ?? null,
    full_access_entries: fullAccess.structuredContent?.count ?? null,
    asked_status: asked.structuredContent?.status ?? null,
    final_state: status.structuredContent?.state ?? null,
  };
}

main().then(
  (out) => {
    process.stdout.write(JSON.stringify({ ok: true, ...out }) + "\n");
    process.exit(0);
  },
  (e) => {
    process.stdout.write(JSON.stringify({ ok: false, error: String(e?.message ?? e) }) + "\n");
    process.exit(1);
  },
);
