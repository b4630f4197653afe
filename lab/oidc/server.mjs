// bma test lab: an OpenID Connect provider standing in for "Cerbère EDU".
//
// Environment:
//   BMA_LAB_OIDC_PORT   listening port on 127.0.0.1 (default 9090)
//   BMA_LAB_OIDC_STATE  directory for generated signing keys (default ./state)
//
// Lab accounts are in accounts.json next to this file. The login page is our
// own (French, checks passwords); consent is granted automatically.
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Provider from 'oidc-provider';

const here = dirname(fileURLToPath(import.meta.url));
const port = Number(process.env.BMA_LAB_OIDC_PORT || 9090);
const stateDir = process.env.BMA_LAB_OIDC_STATE || join(here, 'state');
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(readFileSync(join(here, 'accounts.json'), 'utf8'));
const testPorts = Array.from({ length: 200 }, (_, i) => 18000 + i);

function signingKeys() {
  mkdirSync(stateDir, { recursive: true });
  const path = join(stateDir, 'jwks.json');
  if (!existsSync(path)) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bma-lab-1', use: 'sig', alg: 'RS256' };
    writeFileSync(path, JSON.stringify({ keys: [jwk] }), { mode: 0o600 });
  }
  return JSON.parse(readFileSync(path, 'utf8'));
}

function claimsOf(account) {
  return {
    sub: account.sub,
    name: `${account.given_name} ${account.family_name}`,
    given_name: account.given_name,
    family_name: account.family_name,
    email: account.email,
    email_verified: true,
    preferred_username: account.login,
  };
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bma-portal',
      client_secret: 'bma-portal-secret',
      client_name: 'BMA — portail de migration',
      // 8080: `bma serve` by default; 18000-18199: portals started by the
      // tests and the benchmark, each on a port of its own.
      redirect_uris: [
        'http://127.0.0.1:8080/auth/callback',
        'http://localhost:8080/auth/callback',
        ...testPorts.map((p) => `http://127.0.0.1:${p}/auth/callback`),
      ],
      post_logout_redirect_uris: ['http://127.0.0.1:8080/', 'http://localhost:8080/'],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  jwks: signingKeys(),
  cookies: { keys: ['bma-lab-cookie-key-not-secret'] },
  pkce: { required: () => true },
  // claims of the requested scopes in the ID token too, not only at userinfo
  conformIdTokenClaims: false,
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, sub) {
    const account = accounts.find((a) => a.sub === sub);
    if (!account) return undefined;
    return { accountId: sub, claims: async () => claimsOf(account) };
  },
  ttl: { Session: 8 * 3600, Interaction: 3600, Grant: 8 * 3600, AccessToken: 3600, IdToken: 3600, AuthorizationCode: 600 },
});
provider.proxy = false;

const escape = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, login, error) {
  return `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Cerbère EDU (lab) — Connexion</title></head>
<body>
<h1>Cerbère EDU — laboratoire</h1>
<p>Connectez-vous avec votre compte personnel.</p>
${error ? `<p id="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <label for="login">Identifiant</label>
  <input id="login" name="login" value="${escape(login)}" required autofocus>
  <label for="password">Mot de passe</label>
  <input id="password" name="password" type="password" required>
  <button id="submit" type="submit">Se connecter</button>
</form>
</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function grantAll(details, accountId) {
  const { params } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  grant.addOIDCScope(String(params.scope || 'openid'));
  const missing = details.prompt.details?.missingOIDCClaims;
  if (missing) grant.addOIDCClaims(missing);
  return grant.save();
}

async function interaction(req, res, url) {
  const parts = url.pathname.split('/').filter(Boolean); // ["interaction", uid, ("login")?]
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET' && parts.length === 2) {
    if (details.prompt.name === 'consent') {
      const grantId = await grantAll(details, details.session.accountId);
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return res.end(loginPage(details.uid, details.params.login_hint));
  }
  if (req.method === 'POST' && parts[2] === 'login') {
    const form = await readForm(req);
    const login = form.get('login') || '';
    const account = accounts.find((a) => a.login === login && a.password === form.get('password'));
    if (!account) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(loginPage(details.uid, login, 'Identifiant ou mot de passe incorrect.'));
    }
    const grantId = await grantAll(details, account.sub);
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: account.sub }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }
  res.writeHead(404).end();
}

const callback = provider.callback();
const server = createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname.startsWith('/interaction/')) {
    interaction(req, res, url).catch((err) => {
      console.error('interaction error:', err);
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`interaction error: ${err.message}\n`);
    });
    return;
  }
  if (url.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  callback(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`bma lab OIDC provider listening, issuer ${issuer}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
