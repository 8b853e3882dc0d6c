// The TypeScript SDK client through remotemcp's own authorization server
// (--auth proxy), headless: discovery from the 401, dynamic registration or a
// Client ID Metadata Document, PKCE, our consent page, the upstream login,
// token, tool calls, and a refresh once the access token has expired.
//
//   node ts-proxy-client.mjs <mcp-url> v1          # legacy session
//   node ts-proxy-client.mjs <mcp-url> v2 <mode>   # legacy | auto | 2026-07-28
//
// Environment: PC_REDIRECT, the redirect URI (never listened on);
// PC_CLIENT_METADATA_URL, when set, the client's metadata document URL
// (https: the SDKs accept no other), used as client_id when the
// authorization server supports it; PC_STEP_UP, when set, the title of a
// note to create with the first (notes:read) token, before the expiry: the
// server's 403 insufficient_scope must lead to a second authorization,
// which the script finishes as it did the first, and to the note.
//
// The browser is the test: this script only speaks JSON lines with it.
//   stdout {"authorize": URL}   stdin {"redirect": URL} | {"error": why}
//     the user opens URL, consents, logs in upstream; the test answers with
//     the URL the browser was finally sent to (the redirect URI with code,
//     state and iss), without requesting it.
//   stdout {"phase": "expire", ...}   stdin {"continue": true}
//     the test waits until the access token has expired.
//   stdout {"result": {...}}   the last line.
import readline from 'node:readline';

const [url, sdk, mode = 'legacy'] = process.argv.slice(2);
const REDIRECT = process.env.PC_REDIRECT || 'http://127.0.0.1:8765/callback';
const CIMD = process.env.PC_CLIENT_METADATA_URL || undefined;
const STEP_UP = process.env.PC_STEP_UP || undefined;
const fail = (msg) => { console.error('FAIL: ' + msg); process.exit(1); };

let Client, Transport, UnauthorizedError;
if (sdk === 'v1') {
  ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
  ({ StreamableHTTPClientTransport: Transport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
  ({ UnauthorizedError } = await import('@modelcontextprotocol/sdk/client/auth.js'));
} else {
  ({ Client, StreamableHTTPClientTransport: Transport, UnauthorizedError } = await import('@modelcontextprotocol/client'));
}

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(msg) {
  process.stdout.write(JSON.stringify(msg) + '\n');
  const { value, done } = await lines.next();
  if (done) fail('the test closed stdin');
  return JSON.parse(value);
}

let code, iss, authorizations = 0, tokenSaves = 0;
const invalidated = [];
let lastAuthorizeURL;
const mem = {};
async function browse(authUrl) { // the user, at the test's browser
  authorizations++;
  lastAuthorizeURL = authUrl.toString();
  const a = await ask({ authorize: authUrl.toString() });
  if (a.error) throw new Error('browser: ' + a.error);
  const u = new URL(a.redirect);
  if (!u.toString().startsWith(REDIRECT)) fail(`the browser ended at ${u}, not at ${REDIRECT}`);
  if (u.searchParams.get('error')) throw new Error('authorization error: ' + u.searchParams.get('error'));
  code = u.searchParams.get('code');
  iss = u.searchParams.get('iss') ?? undefined;
}
const provider = {
  get redirectUrl() { return REDIRECT; },
  get clientMetadata() {
    return { client_name: `ts-${sdk}`, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'none', application_type: 'native' };
  },
  clientMetadataUrl: CIMD,
  clientInformation: () => mem.client, saveClientInformation: (c) => { mem.client = c; },
  // As hosts do: the SDK calls it when the server refuses what it holds
  // (invalid_client, invalid_grant) before it authorizes again.
  invalidateCredentials: (what) => {
    invalidated.push(what);
    if (what === 'all' || what === 'client') delete mem.client;
    if (what === 'all' || what === 'tokens') delete mem.tokens;
    if (what === 'all' || what === 'verifier') delete mem.verifier;
    if (what === 'all' || what === 'discovery') delete mem.discovery;
  },
  tokens: () => mem.tokens, saveTokens: (t) => { mem.tokens = t; tokenSaves++; },
  saveCodeVerifier: (v) => { mem.verifier = v; }, codeVerifier: () => mem.verifier,
  saveDiscoveryState: (s) => { mem.discovery = s; }, discoveryState: () => mem.discovery,
  redirectToAuthorization: browse,
};
const options = sdk === 'v1' ? {} : { versionNegotiation: mode === 'legacy' || mode === 'auto' ? { mode } : { mode: { pin: mode } } };
let client, transport;
async function connect() {
  client = new Client({ name: `ts-proxy-${sdk}`, version: '1.0.0' }, options);
  transport = new Transport(new URL(url), { authProvider: provider });
  await client.connect(transport);
}

// The first connection meets the 401: the transport discovers, registers
// (or uses the metadata document URL), and sends the user to authorize;
// the host then finishes with the code and connects again. A step-up ends
// the same way.
async function reauthorized(e) {
  if (!(e instanceof UnauthorizedError) && !/\b40[13]\b|nauthorized/.test(String(e?.message ?? e))) throw e;
  if (!code) fail('unauthorized, but no authorization happened: ' + e);
  const c = code; code = undefined;
  await transport.finishAuth(c, iss);
  await client.close().catch(() => {});
  await connect();
}
try { await connect(); } catch (e) { await reauthorized(e); }
const out = { sdk, mode, clientId: mem.client?.client_id, sessionId: transport.sessionId ?? null };
const who = await client.callTool({ name: 'whoami', arguments: {} });
out.subject = who.structuredContent?.subject;
out.scopes = who.structuredContent?.scopes;
out.upstream = who.structuredContent?.upstream ?? null;
if (!out.subject) fail('whoami: ' + JSON.stringify(who));
out.msFirstTool = Math.round(performance.now());
const search = await client.callTool({ name: 'notes_search', arguments: {} });
if (search.isError) fail('notes_search with notes:read: ' + JSON.stringify(search));

if (STEP_UP) {
  const before = authorizations;
  const create = () => client.callTool({ name: 'notes_create', arguments: { title: STEP_UP } });
  let created;
  try { created = await create(); } catch (e) { await reauthorized(e); created = await create(); }
  if (created.isError || created.structuredContent?.title !== STEP_UP) fail('notes_create after step-up: ' + JSON.stringify(created));
  out.msCreated = Math.round(performance.now());
  out.stepUpAuthorizations = authorizations - before;
  out.stepUpScope = new URL(lastAuthorizeURL).searchParams.get('scope');
  out.invalidated = invalidated;
  const me = await client.callTool({ name: 'whoami', arguments: {} });
  out.scopesAfterStepUp = me.structuredContent?.scopes;
}

// Let the access token expire, then call again on the same connection: the
// transport gets a 401, refreshes, and retries, with no browser.
const first = mem.tokens?.access_token;
out.hadRefreshToken = !!mem.tokens?.refresh_token;
const before = { authorizations, tokenSaves };
await ask({ phase: 'expire', expiresIn: mem.tokens?.expires_in ?? null });
const again = await client.callTool({ name: 'whoami', arguments: {} });
if (again.isError || again.structuredContent?.subject !== out.subject) fail('whoami after expiry: ' + JSON.stringify(again));
out.refreshed = !!mem.tokens?.access_token && mem.tokens.access_token !== first;
out.authorizationsAfterExpiry = authorizations - before.authorizations;
out.tokenSavesAfterExpiry = tokenSaves - before.tokenSaves;
out.authorizations = authorizations;
out.protocolVersion = transport.protocolVersion ?? client.getNegotiatedProtocolVersion?.() ?? null;
await client.close();
process.stdout.write(JSON.stringify({ result: out }) + '\n');
// Done: do not wait for pooled keep-alive sockets to time out.
process.exit(0);
