// panva's oidc-provider (v9) on loopback, for oauth-hub's browser tests.
//
// A real, standards-compliant OpenID Provider that nobody on this project wrote: one
// native public client (token_endpoint_auth_method "none", PKCE S256 required, loopback
// redirect URIs whose port may vary, as RFC 8252 allows), refresh tokens that rotate
// (reusing a rotated one revokes the whole grant), revocation, and the provider's own
// development login and consent pages (any login name works; the password is ignored).
//
// Usage:
//   node server.mjs [--port N] [--client-id ID] [--redirect-uri URI ...]
//                   [--access-token-ttl S] [--id-token-ttl S] [--refresh-token-ttl S]
//                   [--log-requests] [--strict] [--test-clock]
//
// --strict runs it the way a deployment that left oidc-provider's defaults alone does,
// which is what oauth-hub meets in the wild: ID tokens signed with EdDSA (an Ed25519
// key, the client registered with id_token_signed_response_alg EdDSA), the scope's
// claims (email) only at userinfo (conformIdTokenClaims), a refresh token only for
// offline_access granted with prompt=consent, and the device flow (RFC 8628) on, for
// the same client. RFC 9207's iss is sent in every mode.
// --test-clock adds POST /__test/clock?advance=S, which moves the server's clock S
// seconds ahead (Date.now, which all of oidc-provider's expiry checks read), so a test
// can let a 30-second access token expire without waiting for it.
// Environment fallbacks: OIDC_PORT, OIDC_CLIENT_ID, OIDC_REDIRECT_URIS (space or comma
// separated), OIDC_ACCESS_TOKEN_TTL, OIDC_ID_TOKEN_TTL, OIDC_REFRESH_TOKEN_TTL,
// OIDC_LOG_REQUESTS=1.
//
// --port 0 (the default) binds a free port, so callers need not guess one. When the
// server listens it prints exactly one line starting with "ISSUER=" on stdout:
//   ISSUER=http://127.0.0.1:PORT
// followed by one line "CONFIG=<json>" with the client it serves. Everything else
// (oidc-provider's development warnings, request logs, errors) goes to stderr.
// It stops on SIGTERM/SIGINT, and when its stdin reaches end-of-file (so a test runner
// that dies without cleaning up does not leave it running), unless stdin is a TTY.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

// oidc-provider prints its notices with console.info, i.e. on stdout; keep stdout for
// the readiness lines only.
console.info = (...args) => console.error(...args);

const { default: Provider } = await import('oidc-provider');

const HOST = '127.0.0.1';

function splitList(value) {
  return (value || '').split(/[\s,]+/u).filter(Boolean);
}

function seconds(value, name, fallback) {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`oidc server: ${name} must be a positive whole number of seconds, not ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return n;
}

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'access-token-ttl': { type: 'string' },
    'id-token-ttl': { type: 'string' },
    'refresh-token-ttl': { type: 'string' },
    'log-requests': { type: 'boolean' },
    strict: { type: 'boolean' },
    'test-clock': { type: 'boolean' },
  },
  strict: true,
});

const env = process.env;
const port = Number(args.port ?? env.OIDC_PORT ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`oidc server: bad port ${JSON.stringify(args.port ?? env.OIDC_PORT)}`);
  process.exit(2);
}
const clientId = args['client-id'] || env.OIDC_CLIENT_ID || 'oauth-hub-test';
const redirectUris = args['redirect-uri']?.length ? args['redirect-uri'] : splitList(env.OIDC_REDIRECT_URIS);
if (!redirectUris.length) redirectUris.push(`http://${HOST}/callback`);
const accessTokenTtl = seconds(args['access-token-ttl'] ?? env.OIDC_ACCESS_TOKEN_TTL, 'access token TTL', 3600);
const idTokenTtl = seconds(args['id-token-ttl'] ?? env.OIDC_ID_TOKEN_TTL, 'ID token TTL', 3600);
const refreshTokenTtl = seconds(args['refresh-token-ttl'] ?? env.OIDC_REFRESH_TOKEN_TTL, 'refresh token TTL',
  14 * 24 * 3600);
const logRequests = Boolean(args['log-requests'] || env.OIDC_LOG_REQUESTS === '1');
const strict = Boolean(args.strict);
const testClock = Boolean(args['test-clock']);
const idTokenAlg = strict ? 'EdDSA' : 'RS256';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

// The server's clock, movable by a test (see --test-clock). oidc-provider reads the time
// through Date.now() only.
let clockOffsetMs = 0;
const realNow = Date.now.bind(Date);
Date.now = () => realNow() + clockOffsetMs;

// A fresh signing key per run: tests fetch it from the JWKS like any relying party.
const { privateKey } = strict ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `test-${randomBytes(6).toString('hex')}`,
  use: 'sig', alg: idTokenAlg };

// Any login name is an account; its email is the name itself when it looks like one.
function accountFor(id) {
  const email = id.includes('@') ? id : `${id}@example.test`;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email,
        email_verified: true,
        name: `Test User ${id}`,
        preferred_username: id,
      };
    },
  };
}

// Bind first, so that --port 0 works: the issuer needs the real port.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, HOST, resolve);
});
const issuer = `http://${HOST}:${server.address().port}`;

const client = {
  client_id: clientId,
  application_type: 'native', // loopback redirect URIs match on any port (RFC 8252 7.3)
  token_endpoint_auth_method: 'none', // a public client: no secret
  grant_types: ['authorization_code', 'refresh_token', ...(strict ? [DEVICE_GRANT] : [])],
  response_types: ['code'],
  redirect_uris: redirectUris,
  id_token_signed_response_alg: idTokenAlg,
};

// What --strict leaves at oidc-provider's defaults, the other mode sets for convenience.
const lenient = strict ? {} : {
  // Put the scope's claims (email) into the ID token, not only into userinfo.
  conformIdTokenClaims: false,
  // Without this, offline_access (and so a refresh token) is dropped unless the
  // request has prompt=consent. A client allowed the refresh_token grant always gets one.
  issueRefreshToken: async (ctx, c) => c.grantTypeAllowed('refresh_token'),
  // Refresh tokens outlive the browser session (the browser is gone after login).
  expiresWithSession: async () => false,
};

const provider = new Provider(issuer, {
  clients: [client],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true }, // S256 is the only method v9 implements
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  ...lenient,
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    deviceFlow: { enabled: strict },
  },
  // Every refresh returns a new refresh token; using an old one revokes the grant.
  rotateRefreshToken: true,
  findAccount: async (ctx, sub) => accountFor(sub),
  ttl: {
    AccessToken: accessTokenTtl,
    IdToken: idTokenTtl,
    RefreshToken: refreshTokenTtl,
    AuthorizationCode: 60,
    Grant: refreshTokenTtl,
    Interaction: 600,
    Session: 3600,
    DeviceCode: 600,
  },
  // Errors render as plain pages; the debug details of the default page are noise here.
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    const safe = (s) => String(s).replace(/[&<>"']/gu, (c) => `&#${c.charCodeAt(0)};`);
    ctx.body = `<!doctype html><title>oidc-provider error</title><h1>${safe(out.error)}</h1>`
      + `<p>${safe(out.error_description || '')}</p>`;
  },
});

if (logRequests) {
  provider.use(async (ctx, next) => {
    await next();
    console.error(`oidc server: ${ctx.method} ${ctx.path} -> ${ctx.status}`);
  });
}
for (const event of ['server_error', 'grant.error', 'authorization.error', 'revocation.error']) {
  provider.on(event, (ctx, err) => {
    console.error(`oidc server: ${event}: ${err.name}: ${err.message}${err.error_detail ? ` (${err.error_detail})` : ''}`);
  });
}
provider.on('grant.revoked', (ctx, grantId) => {
  console.error(`oidc server: grant revoked (${grantId.slice(0, 6)}…)`);
});

const handle = provider.callback();
server.on('request', (req, res) => {
  if (testClock && req.method === 'POST' && req.url.startsWith('/__test/clock')) {
    const advance = Number(new URL(req.url, issuer).searchParams.get('advance'));
    if (!Number.isFinite(advance)) {
      res.writeHead(400).end('advance must be a number of seconds\n');
      return;
    }
    clockOffsetMs += advance * 1000;
    console.error(`oidc server: clock moved ${advance}s ahead (now +${clockOffsetMs / 1000}s)`);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ offset: clockOffsetMs / 1000 }));
    return;
  }
  handle(req, res);
});

function stop(code = 0) {
  server.close();
  server.closeAllConnections?.();
  process.exit(code);
}
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => stop(0));
if (!process.stdin.isTTY) {
  process.stdin.on('end', () => stop(0));
  process.stdin.on('error', () => stop(0));
  process.stdin.resume();
}

process.stdout.write(`ISSUER=${issuer}\n`);
process.stdout.write(`CONFIG=${JSON.stringify({ issuer, client_id: clientId, redirect_uris: redirectUris,
  access_token_ttl: accessTokenTtl, id_token_ttl: idTokenTtl, refresh_token_ttl: refreshTokenTtl, strict,
  id_token_alg: idTokenAlg, test_clock: testClock })}\n`);
