// bma test lab: an OpenID Connect provider standing in for "Cerbère EDU".
//
// Environment:
//   BMA_LAB_OIDC_PORT   listening port on 127.0.0.1 (default 9090)
//   BMA_LAB_OIDC_STATE  directory for generated signing keys (default ./state)
//
// Lab accounts are in accounts.json next to this file. The login page is our
// own (French, checks passwords); consent is granted automatically.
//
// IMAP access tokens for the new platform's Dovecot (SASL XOAUTH2 /
// OAUTHBEARER): the lab-only client `bma-lab-mint` obtains one for any mailbox
// address at the token endpoint with the extension grant MAILBOX_GRANT
// (`cargo xtask lab token ADDRESS`); Dovecot checks it at the introspection
// endpoint as client `bma-lab-dovecot`, which answers `active`, `scope: imap`
// and the mailbox as `email`.
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Provider, { errors } from 'oidc-provider';

const here = dirname(fileURLToPath(import.meta.url));
const port = Number(process.env.BMA_LAB_OIDC_PORT || 9090);
const stateDir = process.env.BMA_LAB_OIDC_STATE || join(here, 'state');
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(readFileSync(join(here, 'accounts.json'), 'utf8'));
const testPorts = Array.from({ length: 200 }, (_, i) => 18000 + i);

// Extension grant (RFC 6749 section 4.5) minting an IMAP access token for a
// mailbox, without a browser. Lab only: whoever holds the mint client's
// secret gets a token for any address.
const MAILBOX_GRANT = 'urn:bma:lab:grant-type:mailbox-token';
const IMAP_SCOPE = 'imap';
const MAX_TOKEN_TTL = 3600;

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
    // the console's roles (scope `bma`): staff accounts only
    bma_roles: account.roles ?? [],
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
    {
      // the helpdesk console of `bma serve`: staff log in, roles in `bma_roles` (scope `bma`)
      client_id: 'bma-console',
      client_secret: 'bma-console-secret',
      client_name: 'BMA — console du helpdesk',
      redirect_uris: [
        'http://127.0.0.1:8080/console/auth/callback',
        'http://localhost:8080/console/auth/callback',
        ...testPorts.map((p) => `http://127.0.0.1:${p}/console/auth/callback`),
      ],
      post_logout_redirect_uris: ['http://127.0.0.1:8080/console', 'http://localhost:8080/console'],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      // the new platform's Dovecot: only introspects tokens
      client_id: 'bma-lab-dovecot',
      client_secret: 'bma-lab-dovecot-secret',
      client_name: 'BMA lab — Dovecot (new platform)',
      redirect_uris: [],
      response_types: [],
      grant_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      // `cargo xtask lab token`: mints IMAP access tokens
      client_id: 'bma-lab-mint',
      client_secret: 'bma-lab-mint-secret',
      client_name: 'BMA lab — IMAP token minting',
      redirect_uris: [],
      response_types: [],
      grant_types: [MAILBOX_GRANT],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  jwks: signingKeys(),
  cookies: { keys: ['bma-lab-cookie-key-not-secret'] },
  pkce: { required: () => true },
  // claims of the requested scopes in the ID token too, not only at userinfo
  conformIdTokenClaims: false,
  scopes: ['openid', 'profile', 'email', 'offline_access', 'bma'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    email: ['email', 'email_verified'],
    bma: ['bma_roles'],
  },
  features: {
    devInteractions: { enabled: false },
    // The portal's logout sends the browser here (id_token_hint): the
    // provider's session ends, so the next login on a shared PC asks again.
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Cerbère EDU (lab) — Déconnexion</title></head>
<body>
<h1>Cerbère EDU — laboratoire</h1>
<p>Voulez-vous fermer votre session Cerbère EDU ?</p>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Oui, me déconnecter</button>
<button type="submit" form="op.logoutForm">Non, rester connecté·e</button>
</body></html>`;
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Cerbère EDU (lab) — Déconnecté</title></head>
<body>
<h1>Vous êtes déconnecté·e</h1>
<p id="deconnecte">Votre session Cerbère EDU est fermée. Vous pouvez fermer cette page.</p>
</body></html>`;
      },
    },
    introspection: {
      enabled: true,
      // Dovecot may introspect any token; other clients only their own.
      allowedPolicy: async (ctx, client, token) =>
        client.clientId === 'bma-lab-dovecot' || client.clientId === token.clientId,
    },
  },
  // Returned by introspection as top-level claims: the mailbox a minted IMAP
  // token is for (Dovecot's `username_attribute`). Other tokens get none.
  async extraTokenClaims(_ctx, token) {
    if (token.gty !== MAILBOX_GRANT) return undefined;
    return { email: token.accountId };
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

// POST /token grant_type=MAILBOX_GRANT mailbox=ADDRESS [expires_in=SECONDS]
// (client_secret_post) → { access_token, token_type, expires_in, scope }.
provider.registerGrantType(
  MAILBOX_GRANT,
  async function mailboxTokenGrant(ctx, next) {
    const { client, params } = ctx.oidc;
    const mailbox = String(params.mailbox || '').trim().toLowerCase();
    if (!/^[^\s@:]+@[^\s@:]+$/.test(mailbox)) {
      throw new errors.InvalidRequest('mailbox must be an email address');
    }
    const ttl = params.expires_in === undefined ? MAX_TOKEN_TTL : Number(params.expires_in);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL) {
      throw new errors.InvalidRequest(`expires_in must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL}`);
    }
    const token = new provider.AccessToken({
      accountId: mailbox,
      client,
      gty: MAILBOX_GRANT,
      scope: IMAP_SCOPE,
      expiresIn: ttl,
    });
    ctx.oidc.entity('AccessToken', token);
    const value = await token.save();
    ctx.body = { access_token: value, token_type: 'Bearer', expires_in: token.expiration, scope: token.scope };
    await next();
  },
  ['mailbox', 'expires_in'],
);

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
