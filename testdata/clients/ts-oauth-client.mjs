// The TypeScript SDK client through OAuth, headless: discovery
// from the 401, dynamic registration, PKCE, token (with resource=), tool
// calls, and a step-up from notes:read to notes:write on 403.
//
//   node ts-oauth-client.mjs <mcp-url> v1          # legacy session
//   node ts-oauth-client.mjs <mcp-url> v2 <mode>   # legacy | auto | 2026-07-28
//
// The "browser" follows the authorization server's redirects with a cookie
// jar until it is sent back to the redirect URI. Prints one JSON line.
const [url, sdk, mode = 'legacy'] = process.argv.slice(2);
const REDIRECT = 'http://127.0.0.1:8765/callback';
const fail = (msg) => { console.error('FAIL: ' + msg); process.exit(1); };

let Client, Transport, UnauthorizedError, auth;
if (sdk === 'v1') {
  ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
  ({ StreamableHTTPClientTransport: Transport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
  ({ UnauthorizedError, auth } = await import('@modelcontextprotocol/sdk/client/auth.js'));
} else {
  ({ Client, StreamableHTTPClientTransport: Transport, UnauthorizedError, auth } = await import('@modelcontextprotocol/client'));
}

let code, iss, authorizations = 0;
const mem = {};
async function browse(authUrl) { // the user, approving
  authorizations++;
  const jar = new Map();
  let next = authUrl.toString();
  for (let i = 0; i < 20; i++) {
    const r = await fetch(next, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const c of r.headers.getSetCookie?.() ?? []) { const [kv] = c.split(';'); const j = kv.indexOf('='); jar.set(kv.slice(0, j), kv.slice(j + 1)); }
    const loc = r.headers.get('location');
    if (!loc) fail(`authorization stopped at ${next} with status ${r.status}`);
    const u = new URL(loc, next);
    if (u.toString().startsWith(REDIRECT)) {
      if (u.searchParams.get('error')) throw new Error('authorization error: ' + u.searchParams.get('error'));
      code = u.searchParams.get('code'); iss = u.searchParams.get('iss') ?? undefined;
      return;
    }
    next = u.toString();
  }
  fail('too many redirects');
}
const provider = {
  get redirectUrl() { return REDIRECT; },
  get clientMetadata() {
    return { client_name: `ts-${sdk}`, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'none', application_type: 'native' };
  },
  clientInformation: () => mem.client, saveClientInformation: (c) => { mem.client = c; },
  tokens: () => mem.tokens, saveTokens: (t) => { mem.tokens = t; },
  saveCodeVerifier: (v) => { mem.verifier = v; }, codeVerifier: () => mem.verifier,
  saveDiscoveryState: (s) => { mem.discovery = s; }, discoveryState: () => mem.discovery,
  redirectToAuthorization: browse,
};
const options = sdk === 'v1' ? {} : { versionNegotiation: mode === 'legacy' || mode === 'auto' ? { mode } : { mode: { pin: mode } } };
let client, transport;
async function connect() {
  client = new Client({ name: `ts-oauth-${sdk}`, version: '1.0.0' }, options);
  transport = new Transport(new URL(url), { authProvider: provider });
  await client.connect(transport);
}
// Runs op; when the server asks for authorization (401) or more scope (403
// insufficient_scope), does what a host does (like the conformance
// suite's withOAuthRetry): authorize again for the union of the scopes held
// and challenged, finish with the code the browser brought back, and retry
// once on a fresh connection.
let granted = [], stepUps = 0;
async function authorized(op) {
  try { return await op(); } catch (e) {
    const msg = String(e?.message ?? e);
    const stepUp = /\b403\b|insufficient_scope|upscoping|invalid_scope/.test(msg);
    const needsAuth = stepUp || e instanceof UnauthorizedError || /\b401\b|nauthorized/.test(msg);
    if (!needsAuth) throw e;
    if (!code || stepUp) {
      // The transport could not widen the grant itself: both SDKs register
      // the client with the scope of the first challenge, and authorization
      // servers (oidc-provider among them) grant a client only what it
      // registered. So register again and authorize for the union.
      const scope = [...new Set([...granted, 'notes:read', 'notes:write'])].join(' ');
      mem.tokens = undefined;
      mem.client = undefined;
      code = undefined;
      const r = await auth(provider, { serverUrl: new URL(url), scope });
      if (r !== 'REDIRECT' || !code) throw e;
      stepUps++;
    }
    const c = code; code = undefined;
    await transport.finishAuth(c, iss);
    await client.close().catch(() => {});
    await connect();
    return await op();
  }
}

await authorized(connect);
const out = { sdk, mode, sessionId: transport.sessionId ?? null };
const who = await authorized(() => client.callTool({ name: 'whoami', arguments: {} }));
out.subject = who.structuredContent?.subject;
out.firstScopes = who.structuredContent?.scopes;
granted = out.firstScopes ?? [];
if (out.subject !== 'alice') fail('whoami: ' + JSON.stringify(who));

const search = await authorized(() => client.callTool({ name: 'notes_search', arguments: {} }));
if (search.isError) fail('notes_search with notes:read: ' + JSON.stringify(search));

// notes:write is missing: 403 insufficient_scope, then step-up.
const created = await authorized(() => client.callTool({ name: 'notes_create', arguments: { title: `from ts ${sdk} ${mode}` } }));
if (created.isError || !created.structuredContent?.id) fail('notes_create after step-up: ' + JSON.stringify(created));
const after = await authorized(() => client.callTool({ name: 'whoami', arguments: {} }));
out.finalScopes = after.structuredContent?.scopes;
out.authorizations = authorizations;
out.stepUps = stepUps;
out.protocolVersion = transport.protocolVersion ?? client.getNegotiatedProtocolVersion?.() ?? null;
await client.close();
console.log(JSON.stringify(out));
// Done: do not wait for pooled keep-alive sockets to time out.
process.exit(0);
