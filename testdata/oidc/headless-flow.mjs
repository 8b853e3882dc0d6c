// Headless OAuth client for tests: does what an MCP client does against an
// authorization server, with a scripted "browser" (manual redirects, cookie
// jar, HTML form posts) instead of a real one.
//
//   ISSUER=http://127.0.0.1:PORT RESOURCE=http://127.0.0.1:8080/mcp \
//   REDIRECT=http://127.0.0.1:8765/callback SCOPE='notes:read notes:write' \
//   node headless-flow.mjs
//
// Steps: AS metadata discovery (RFC 8414 /.well-known/oauth-authorization-server,
// then /.well-known/openid-configuration; issuer must match ISSUER exactly and
// code_challenge_methods_supported must contain S256) -> dynamic client
// registration (RFC 7591: public client, token_endpoint_auth_method none,
// application_type native) -> authorization request with PKCE S256, state and
// resource= (RFC 8707) -> the browser follows redirects until one goes to
// REDIRECT (nothing listens there) -> checks state and iss (RFC 9207) -> code
// exchange at the token endpoint with code_verifier and resource=.
//
// Prints one JSON line on stdout:
//   {"access_token":…,"refresh_token":…,"scope":…,"client_id":…,"token_type":…,"expires_in":…}
// Errors go to stderr with exit status 1.
//
// Optional environment: CLIENT_ID (skip registration, use this public client),
// LOGIN (value for a login form's "login" field, default "alice"; only used when
// the AS shows HTML forms instead of redirecting), NO_RESOURCE=1 (send no
// resource parameter at all, to test how the AS and RS deal with that).
import * as crypto from 'node:crypto';

const env = process.env;
function need(name) {
  if (!env[name]) fail(`${name} must be set`);
  return env[name];
}
function fail(msg) {
  process.stderr.write(`headless-flow: ${msg}\n`);
  process.exit(1);
}

const ISSUER = need('ISSUER');
const RESOURCE = env.NO_RESOURCE === '1' ? undefined : need('RESOURCE');
const REDIRECT = need('REDIRECT');
const SCOPE = env.SCOPE ?? '';
const LOGIN = env.LOGIN || 'alice';

async function getJSON(url) {
  const r = await fetch(url, { headers: { accept: 'application/json' } });
  if (!r.ok) return undefined;
  return r.json();
}

// 1. Discovery (issuer without a path: RFC 8414 first, then OIDC discovery).
let meta;
let metaURL;
for (const p of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
  metaURL = new URL(p, ISSUER).href;
  meta = await getJSON(metaURL);
  if (meta) break;
}
if (!meta) fail(`no authorization server metadata at ${ISSUER}`);
if (meta.issuer !== ISSUER) fail(`metadata issuer ${JSON.stringify(meta.issuer)} != ${JSON.stringify(ISSUER)} (${metaURL})`);
if (!meta.code_challenge_methods_supported?.includes('S256')) fail('AS does not advertise PKCE S256');
for (const k of ['authorization_endpoint', 'token_endpoint']) {
  if (!meta[k]) fail(`metadata has no ${k}`);
}

// 2. Dynamic client registration (unless CLIENT_ID is given).
let clientId = env.CLIENT_ID;
if (!clientId) {
  if (!meta.registration_endpoint) fail('AS has no registration_endpoint and CLIENT_ID is not set');
  const r = await fetch(meta.registration_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({
      client_name: 'remotemcp headless test client',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    }),
  });
  const body = await r.json().catch(() => ({}));
  if (r.status !== 201 || !body.client_id) fail(`registration failed: ${r.status} ${JSON.stringify(body)}`);
  clientId = body.client_id;
}

// 3. Authorization request with PKCE S256.
const b64u = (buf) => Buffer.from(buf).toString('base64url');
const verifier = b64u(crypto.randomBytes(32));
const challenge = b64u(crypto.createHash('sha256').update(verifier).digest());
const state = b64u(crypto.randomBytes(16));
const authURL = new URL(meta.authorization_endpoint);
const q = {
  response_type: 'code',
  client_id: clientId,
  redirect_uri: REDIRECT,
  state,
  code_challenge: challenge,
  code_challenge_method: 'S256',
};
if (SCOPE) q.scope = SCOPE;
if (RESOURCE) q.resource = RESOURCE;
for (const [k, v] of Object.entries(q)) authURL.searchParams.set(k, v);

// 4. The "browser": cookie jar (per origin, which is enough for one AS),
// manual redirects, and submission of the first HTML form if a page shows one.
const jar = new Map();
function cookieHeader() {
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}
function keepCookies(res) {
  for (const c of res.headers.getSetCookie()) {
    const [pair, ...attrs] = c.split(';');
    const i = pair.indexOf('=');
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))
      || attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now());
    if (expired || value === '') jar.delete(name); else jar.set(name, value);
  }
}
const decodeHTML = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<')
  .replace(/&gt;/g, '>').replace(/&amp;/g, '&');
function firstForm(html, base) {
  const m = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!m) return undefined;
  const attr = (tag, name) => {
    const a = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
    return a ? decodeHTML(a[2] ?? a[3] ?? a[4]) : undefined;
  };
  const fields = new URLSearchParams();
  for (const [tag] of m[2].matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(tag, 'name');
    if (!name) continue;
    let value = attr(tag, 'value') ?? '';
    if (name === 'login' && !value) value = LOGIN;
    if (name === 'password' && !value) value = 'password';
    fields.append(name, value);
  }
  return {
    method: (attr(m[1], 'method') || 'GET').toUpperCase(),
    action: new URL(attr(m[1], 'action') || base, base).href,
    fields,
  };
}

const redirect = new URL(REDIRECT);
const isCallback = (u) => u.origin === redirect.origin && u.pathname === redirect.pathname;
let req = { method: 'GET', url: authURL.href };
let callback;
for (let hop = 0; hop < 20 && !callback; hop++) {
  const init = { method: req.method, redirect: 'manual', headers: { cookie: cookieHeader() } };
  if (req.body) {
    init.body = req.body;
    init.headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  const res = await fetch(req.url, init);
  keepCookies(res);
  if (res.status >= 300 && res.status < 400) {
    const loc = new URL(res.headers.get('location'), req.url);
    await res.arrayBuffer();
    if (isCallback(loc)) callback = loc;
    else req = { method: 'GET', url: loc.href };
    continue;
  }
  const text = await res.text();
  const form = res.status === 200 && firstForm(text, req.url);
  if (!form) fail(`browser stuck at ${req.method} ${req.url}: ${res.status} ${text.slice(0, 500)}`);
  req = form.method === 'POST'
    ? { method: 'POST', url: form.action, body: form.fields.toString() }
    : { method: 'GET', url: `${form.action.split('?')[0]}?${form.fields}` };
}
if (!callback) fail('too many redirects before reaching REDIRECT');

// 5. Authorization response checks.
const p = callback.searchParams;
if (p.get('error')) fail(`authorization error: ${p.get('error')} ${p.get('error_description') ?? ''}`);
if (p.get('state') !== state) fail('state mismatch in authorization response');
if (meta.authorization_response_iss_parameter_supported && p.get('iss') !== ISSUER) {
  fail(`iss ${JSON.stringify(p.get('iss'))} in authorization response != ${ISSUER}`);
}
const code = p.get('code');
if (!code) fail(`no code in ${callback.href}`);

// 6. Code exchange.
const form = new URLSearchParams({
  grant_type: 'authorization_code',
  code,
  redirect_uri: REDIRECT,
  client_id: clientId,
  code_verifier: verifier,
});
if (RESOURCE) form.set('resource', RESOURCE);
const tr = await fetch(meta.token_endpoint, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  body: form,
});
const tok = await tr.json().catch(() => ({}));
if (tr.status !== 200 || !tok.access_token) fail(`token request failed: ${tr.status} ${JSON.stringify(tok)}`);

process.stdout.write(`${JSON.stringify({
  access_token: tok.access_token,
  refresh_token: tok.refresh_token,
  scope: tok.scope,
  client_id: clientId,
  token_type: tok.token_type,
  expires_in: tok.expires_in,
})}\n`);
