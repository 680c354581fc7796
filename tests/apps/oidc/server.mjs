// node-oidc-provider 8 with a login and consent interaction of its own, a notes API authorised
// by the provider's access tokens, and the client page in ./public, in one Node process on
// 127.0.0.1 (tests/apps/oidc.rs).
//
// Usage: node server.mjs MODULES DIR
//   MODULES  the node_modules holding oidc-provider (target/apps/oidc/node_modules)
//   DIR      holds accounts.json ([{username, password, name}]); server.log goes there too
// Environment: OIDC_ADMIN_SECRET, the value of the `x-admin-secret` header that GET /__state
// needs. Prints "listening on http://127.0.0.1:PORT" once it accepts connections.
//
// Routes besides the provider's own (/auth, /token, /me, /session/end, ...):
//   /app/...                      the client page (public/)
//   GET  /interaction/UID         the login form, or the consent form once logged in
//   POST /interaction/UID/login   checks the password against accounts.json
//   POST /interaction/UID/confirm grants the requested scopes
//   GET|POST /api/notes, GET|DELETE /api/notes/ID   a bearer access token of this provider
//   GET  /__state                 notes, note writes, sessions and grants per account (admin)
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join, dirname, normalize } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [modules, dir] = process.argv.slice(2);
const { default: Provider } = await import(
  pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js')).href
);
const here = dirname(fileURLToPath(import.meta.url));
const adminSecret = process.env.OIDC_ADMIN_SECRET;
const accounts = new Map(
  JSON.parse(readFileSync(join(dir, 'accounts.json'), 'utf8')).map((a) => [a.username, a]),
);

// An in-memory adapter (the provider's own keeps at most 1000 entries and drops the oldest,
// which a load test overflows) whose contents /__state reads.
const store = new Map(); // "Model:id" -> { payload, expiresAt }
const grantMembers = new Map(); // grantId -> Set of "Model:id"
const now = () => Date.now();
function live(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= now()) {
    store.delete(key);
    return undefined;
  }
  return entry.payload;
}
class Adapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, {
      payload,
      expiresAt: typeof expiresIn === 'number' ? now() + expiresIn * 1000 : undefined,
    });
    if (payload.grantId) {
      if (!grantMembers.has(payload.grantId)) grantMembers.set(payload.grantId, new Set());
      grantMembers.get(payload.grantId).add(key);
    }
  }
  async find(id) { return live(this.key(id)); }
  async findByUid(uid) {
    for (const [key, entry] of store) {
      if (key.startsWith('Session:') && entry.payload.uid === uid) return live(key);
    }
    return undefined;
  }
  async findByUserCode() { return undefined; }
  async consume(id) {
    const payload = live(this.key(id));
    if (payload) payload.consumed = Math.floor(now() / 1000);
  }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) ?? []) {
      if (key.startsWith(`${this.model}:`)) store.delete(key);
    }
  }
}

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(base, {
  adapter: Adapter,
  clients: [{
    client_id: 'notes-app',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [`${base}/app/callback.html`],
    post_logout_redirect_uris: [`${base}/app/`],
  }],
  async findAccount(ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() { return { sub: id, name: account.name, preferred_username: id }; },
    };
  },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
  cookies: { keys: ['chorus-oidc-test-cookie-key'] },
  // The page calls /token, /me from its own origin, which the provider checks as CORS.
  clientBasedCORS: (ctx, origin) => origin === base,
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});
const providerCallback = provider.callback();

// Note writes, in order, for the tests' judgement: {method, id, account, status, text}.
const notes = new Map(); // id -> {id, account, text}
const noteWrites = [];
let lastNoteId = 0;

function send(res, status, type, body, headers = {}) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
  res.end(body);
}
const json = (res, status, value) => send(res, status, 'application/json', JSON.stringify(value));
const html = (res, status, body) => send(res, status, 'text/html; charset=utf-8', body);
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function page(title, body) {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:30em}label{display:block;margin:.5em 0}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return html(res, 400, page('Error', '<p>interaction mismatch</p>'));
  const { prompt, params } = details;
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') {
      return html(res, 200, page('Sign in', `
<p>to continue to <b>${escape(params.client_id)}</b></p>
<form id="login-form" method="post" action="/interaction/${uid}/login">
  <label>Username <input id="login" name="login" autocomplete="username"></label>
  <label>Password <input id="password" name="password" type="password" autocomplete="current-password"></label>
  <button id="submit-login" type="submit">Sign in</button>
</form>`));
    }
    const scopes = [...(prompt.details.missingOIDCScope ?? [])].join(', ');
    return html(res, 200, page('Authorize', `
<p><b>${escape(params.client_id)}</b> asks for: ${escape(scopes)}</p>
<form id="consent-form" method="post" action="/interaction/${uid}/confirm">
  <button id="allow" type="submit">Allow</button>
</form>`));
  }
  if (req.method === 'POST' && action === 'login' && prompt.name === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const account = accounts.get(form.get('login'));
    if (!account || account.password !== form.get('password')) {
      return html(res, 200, page('Sign in', `<p id="error">Invalid username or password.</p>
<p><a href="/interaction/${uid}">Try again</a></p>`));
    }
    return provider.interactionFinished(req, res, { login: { accountId: account.username } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (req.method === 'POST' && action === 'confirm' && prompt.name === 'consent') {
    await readBody(req);
    const { accountId } = details.session;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }
  return html(res, 400, page('Error', `<p>unexpected ${escape(req.method)} for ${escape(prompt.name)}</p>`));
}

async function notesApi(req, res, id) {
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  const token = bearer ? await provider.AccessToken.find(bearer[1]) : undefined;
  if (!token || token.isExpired) {
    return send(res, 401, 'application/json', JSON.stringify({ error: 'invalid_token' }), {
      'www-authenticate': 'Bearer error="invalid_token"',
    });
  }
  const account = token.accountId;
  if (id === undefined && req.method === 'GET') {
    return json(res, 200, [...notes.values()].filter((n) => n.account === account));
  }
  if (id === undefined && req.method === 'POST') {
    let text;
    try { ({ text } = JSON.parse(await readBody(req))); } catch { text = undefined; }
    if (typeof text !== 'string' || !text) {
      noteWrites.push({ method: 'POST', id: null, account, status: 400, text: null });
      return json(res, 400, { error: 'a note needs a text' });
    }
    const note = { id: ++lastNoteId, account, text };
    notes.set(note.id, note);
    noteWrites.push({ method: 'POST', id: note.id, account, status: 201, text });
    return send(res, 201, 'application/json', JSON.stringify(note), {
      location: `/api/notes/${note.id}`,
    });
  }
  const note = notes.get(Number(id));
  const mine = note && note.account === account;
  if (req.method === 'GET') return mine ? json(res, 200, note) : json(res, 404, { error: 'no such note' });
  if (req.method === 'DELETE') {
    const status = mine ? 204 : 404;
    noteWrites.push({ method: 'DELETE', id: Number(id), account, status, text: null });
    if (!mine) return json(res, 404, { error: 'no such note' });
    notes.delete(note.id);
    res.writeHead(204, { 'cache-control': 'no-store' });
    return res.end();
  }
  return json(res, 405, { error: 'method not allowed' });
}

function state() {
  const sessions = [];
  const grants = [];
  const accessTokens = [];
  for (const key of [...store.keys()]) {
    const payload = live(key);
    if (!payload) continue;
    const [model] = key.split(':');
    if (model === 'Session' && payload.accountId) sessions.push({ account: payload.accountId, uid: payload.uid });
    if (model === 'Grant') grants.push({ account: payload.accountId, client: payload.clientId });
    if (model === 'AccessToken') accessTokens.push({ account: payload.accountId });
  }
  return { notes: [...notes.values()], noteWrites, sessions, grants, accessTokens };
}

const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };
function staticFile(res, path) {
  const file = normalize(join(here, 'public', path.endsWith('/') ? `${path}index.html` : path));
  if (!file.startsWith(join(here, 'public'))) return json(res, 404, { error: 'not found' });
  try {
    const ext = file.slice(file.lastIndexOf('.'));
    return send(res, 200, types[ext] ?? 'application/octet-stream', readFileSync(file));
  } catch {
    return json(res, 404, { error: 'not found' });
  }
}

server.on('request', async (req, res) => {
  const url = new URL(req.url, base);
  let match;
  try {
    if (url.pathname === '/') {
      res.writeHead(302, { location: '/app/' });
      return res.end();
    }
    if ((match = /^\/app(\/.*)$/.exec(url.pathname))) return staticFile(res, match[1]);
    if ((match = /^\/interaction\/([^/]+)(?:\/(login|confirm))?$/.exec(url.pathname))) {
      return await interaction(req, res, match[1], match[2]);
    }
    if ((match = /^\/api\/notes(?:\/(\d+))?$/.exec(url.pathname))) return await notesApi(req, res, match[1]);
    if (url.pathname === '/__state') {
      if (!adminSecret || req.headers['x-admin-secret'] !== adminSecret) return json(res, 403, { error: 'admin only' });
      return json(res, 200, state());
    }
    return providerCallback(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) html(res, 500, page('Error', `<pre>${escape(err.stack)}</pre>`));
    else res.end();
  }
});
console.log(`listening on ${base}`);
