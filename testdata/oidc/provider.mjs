// Test-only OAuth 2.1 / OpenID authorization server for remotemcp's tests,
// built on panva's oidc-provider (pinned in .ci/npm/package.json).
//
// Run it with the pinned Node 22 from a directory that has node_modules with
// oidc-provider in it (the Go tests copy this file into .cache/npm/):
//
//   PORT=0 RESOURCE=http://127.0.0.1:8080/mcp node provider.mjs
//
// When ready it prints exactly one JSON line on stdout:
//   {"issuer":"http://127.0.0.1:PORT","port":PORT}
// Everything else (oidc-provider's warnings, errors) goes to stderr.
//
// Environment:
//   PORT                      port on 127.0.0.1 (0 or unset = a free port)
//   RESOURCE                  RFC 8707 resource indicator(s) this AS issues tokens
//                             for, comma or space separated (required); each gets
//                             aud = the indicator itself
//   RESOURCE_SCOPES           scopes of those resources (default "notes:read notes:write")
//   ACCESS_TOKEN_FORMAT       "jwt" (default, RFC 9068, typ at+jwt) or "opaque".
//                             oidc-provider never introspects JWT access tokens
//                             (unsupported_token_type); use "opaque" to test
//                             introspection of access tokens.
//   ACCESS_TOKEN_ALG          JWS alg of JWT access tokens: ES256 (default) or RS256
//   ACCESS_TOKEN_TTL          seconds (default 3600)
//   USER_ACCOUNT              account id the headless login signs in as (default "alice");
//                             it becomes the tokens' sub
//   INTERACTION               "auto" (default): /interaction/:uid logs USER_ACCOUNT in
//                             and grants everything requested, with plain 303
//                             redirects (a client needs only a cookie jar);
//                             "deny": the interaction ends with error=access_denied
//   INTROSPECT_CLIENT_ID      pre-registered confidential client (client_secret_basic
//   INTROSPECT_CLIENT_SECRET  or client_secret_post) allowed to call the introspection
//                             endpoint; both must be set for it to exist
//   DEFAULT_RESOURCE          "1": an authorization request without resource= gets the
//                             first RESOURCE (default: no resource, which gives an
//                             opaque, audience-less token only good at userinfo)
//   DEFAULT_SCOPE             scope added to an authorization request (GET /auth) that
//                             has none (default: none added; oidc-provider then grants
//                             nothing and answers error=access_denied)
//   SERVE_RFC8414             "0": answer 404 at /.well-known/oauth-authorization-server
//                             (default: oidc-provider serves the same document there
//                             as at /.well-known/openid-configuration)
import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const env = process.env;
const resources = (env.RESOURCE || '').split(/[\s,]+/).filter(Boolean);
if (resources.length === 0) {
  console.error('provider.mjs: RESOURCE must be set (e.g. http://127.0.0.1:8080/mcp)');
  process.exit(2);
}
for (const r of resources) {
  const u = URL.parse(r);
  if (!u || u.hash) {
    console.error(`provider.mjs: RESOURCE ${r} is not an absolute URI without fragment`);
    process.exit(2);
  }
}
const resourceScopes = (env.RESOURCE_SCOPES || 'notes:read notes:write').split(/\s+/).filter(Boolean);
const atFormat = env.ACCESS_TOKEN_FORMAT || 'jwt';
if (!['jwt', 'opaque'].includes(atFormat)) {
  console.error('provider.mjs: ACCESS_TOKEN_FORMAT must be jwt or opaque');
  process.exit(2);
}
const atAlg = env.ACCESS_TOKEN_ALG || 'ES256';
if (!['ES256', 'RS256'].includes(atAlg)) {
  console.error('provider.mjs: ACCESS_TOKEN_ALG must be ES256 or RS256');
  process.exit(2);
}
const atTTL = Number.parseInt(env.ACCESS_TOKEN_TTL || '3600', 10);
const account = env.USER_ACCOUNT || 'alice';
const interactionMode = env.INTERACTION || 'auto';
const port = Number.parseInt(env.PORT || '0', 10);

// Fresh signing keys for every run: an EC P-256 key (ES256) and an RSA key
// (RS256, also the default id_token alg). Both are published at jwks_uri.
const jwk = (type, opts) => crypto.generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' });
const jwks = {
  keys: [
    { ...jwk('ec', { namedCurve: 'P-256' }), use: 'sig', alg: 'ES256' },
    { ...jwk('rsa', { modulusLength: 2048 }), use: 'sig', alg: 'RS256' },
  ],
};

const clients = [];
if (env.INTROSPECT_CLIENT_ID && env.INTROSPECT_CLIENT_SECRET) {
  clients.push({
    client_id: env.INTROSPECT_CLIENT_ID,
    client_secret: env.INTROSPECT_CLIENT_SECRET,
    client_name: 'resource server (introspection)',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  });
}

// Bind first so that PORT=0 yields the real port before the issuer is fixed.
const server = http.createServer();
try {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
} catch (err) {
  console.error(`provider.mjs: cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
}
const realPort = server.address().port;
const issuer = `http://127.0.0.1:${realPort}`;

const configuration = {
  clients,
  jwks,
  scopes: ['openid', 'offline_access', ...resourceScopes],
  responseTypes: ['code'], // OAuth 2.1: no implicit / hybrid
  claims: { openid: ['sub'] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  // A dynamically registered client that says nothing gets these.
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  },
  pkce: { required: () => true }, // S256 only (the only method oidc-provider 9 has)
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  // Refresh tokens for every client allowed the refresh_token grant, without
  // needing offline_access (oidc-provider drops offline_access unless
  // prompt=consent is sent, which MCP clients do not do). Public clients'
  // refresh tokens rotate (oidc-provider's default rotateRefreshToken).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  clientBasedCORS: () => true,
  ttl: {
    AccessToken: () => atTTL,
    AuthorizationCode: () => 60,
    IdToken: () => 3600,
    RefreshToken: () => 24 * 3600,
    Interaction: () => 600,
    Session: () => 24 * 3600,
    Grant: () => 24 * 3600,
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false }, // replaced by the headless handler below
    registration: { enabled: true, initialAccessToken: false }, // open DCR
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => {
        if (oneOf) return oneOf;
        return env.DEFAULT_RESOURCE === '1' ? resources[0] : undefined;
      },
      // A token request without resource= gets the resource of the grant.
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (!resources.includes(resourceIndicator)) {
          throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
        }
        return {
          scope: resourceScopes.join(' '),
          audience: resourceIndicator,
          accessTokenTTL: atTTL,
          accessTokenFormat: atFormat,
          ...(atFormat === 'jwt' ? { jwt: { sign: { alg: atAlg } } } : {}),
        };
      },
    },
  },
};

const provider = new Provider(issuer, configuration);

for (const ev of ['server_error', 'authorization.error', 'grant.error', 'registration_create.error',
  'introspection.error', 'revocation.error', 'userinfo.error', 'discovery.error']) {
  provider.on(ev, (ctx, err) => {
    console.error(`provider.mjs: ${ev}: ${err?.name} ${err?.message}${err?.error_detail ? ` (${err.error_detail})` : ''}`);
  });
}

// Headless interaction: every visit to /interaction/:uid completes the current
// prompt at once and 303-redirects back to the authorization endpoint, which
// either redirects to the next interaction (login, then consent) or to the
// client's redirect_uri with ?code=…&iss=….
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session, grantId } = details;
  if (interactionMode === 'deny') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User denied the request (INTERACTION=deny)',
    }, { mergeWithLastSubmission: false });
    return;
  }
  switch (prompt.name) {
    case 'login':
      await provider.interactionFinished(req, res, { login: { accountId: account } },
        { mergeWithLastSubmission: false });
      return;
    case 'consent': {
      const grant = grantId
        ? await provider.Grant.find(grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      if (d.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
        { mergeWithLastSubmission: true });
      return;
    }
    default:
      res.statusCode = 501;
      res.end(`prompt ${prompt.name} not implemented`);
  }
}

const callback = provider.callback();
server.on('request', (req, res) => {
  const path = req.url.split('?')[0];
  if (/^\/interaction\/[^/]+$/.test(path) && req.method === 'GET') {
    interaction(req, res).catch((err) => {
      console.error(`provider.mjs: interaction: ${err?.name} ${err?.message}`);
      if (!res.headersSent) {
        res.statusCode = 400;
        res.setHeader('Content-Type', 'text/plain');
      }
      res.end(`interaction failed: ${err?.message}\n`);
    });
    return;
  }
  if (path === '/auth' && req.method === 'GET' && env.DEFAULT_SCOPE) {
    const u = new URL(req.url, issuer);
    if (!u.searchParams.get('scope')) {
      u.searchParams.set('scope', env.DEFAULT_SCOPE);
      req.url = `${u.pathname}${u.search}`;
    }
  }
  if (path === '/.well-known/oauth-authorization-server' && env.SERVE_RFC8414 === '0') {
    res.statusCode = 404; // to make clients fall back to OpenID discovery
    res.end();
    return;
  }
  callback(req, res);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

process.stdout.write(`${JSON.stringify({ issuer, port: realPort })}\n`);
