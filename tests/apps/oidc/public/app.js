// notes-app, a public client of the provider on this same origin (tests/apps/oidc/server.mjs).
const CLIENT_ID = 'notes-app';
const origin = window.location.origin;
const REDIRECT_URI = `${origin}/app/callback.html`;
const AFTER_LOGOUT = `${origin}/app/`;
const $ = (id) => document.getElementById(id);
const status = (text) => { $('status').textContent = text; };

function base64url(bytes) {
  let text = '';
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
const random = (size) => base64url(crypto.getRandomValues(new Uint8Array(size)));
async function s256(text) {
  return base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}
function jwtClaims(jwt) {
  const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(atob(part));
}

async function signIn() {
  const verifier = random(32);
  const state = random(16);
  const nonce = random(16);
  sessionStorage.setItem('pkce', JSON.stringify({ verifier, state, nonce }));
  const url = new URL('/auth', origin);
  url.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    scope: 'openid profile',
    redirect_uri: REDIRECT_URI,
    code_challenge: await s256(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  window.location.assign(url);
}

async function callback() {
  const params = new URLSearchParams(window.location.search);
  const pending = JSON.parse(sessionStorage.getItem('pkce') || 'null');
  sessionStorage.removeItem('pkce');
  if (params.get('error')) throw new Error(`${params.get('error')}: ${params.get('error_description')}`);
  if (!pending || params.get('state') !== pending.state) throw new Error('state mismatch');
  const response = await fetch('/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: REDIRECT_URI,
      client_id: CLIENT_ID,
      code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json();
  if (!response.ok) throw new Error(`token: ${tokens.error}: ${tokens.error_description}`);
  if (jwtClaims(tokens.id_token).nonce !== pending.nonce) throw new Error('nonce mismatch');
  sessionStorage.setItem('tokens', JSON.stringify(tokens));
  window.location.replace(AFTER_LOGOUT);
}

function tokens() { return JSON.parse(sessionStorage.getItem('tokens') || 'null'); }
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${tokens().access_token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(data)}`);
  return data;
}

let me = null;
async function list() {
  const notes = await api('GET', '/api/notes');
  const ul = $('notes');
  ul.innerHTML = '';
  for (const note of notes) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = '#';
    a.className = 'open';
    a.textContent = note.text;
    a.addEventListener('click', (event) => { event.preventDefault(); open(note.id).catch(failed); });
    li.appendChild(a);
    ul.appendChild(li);
  }
  $('note').classList.add('hidden');
  status(`signed in as ${me.preferred_username}: ${notes.length} note(s)`);
}
let current = null;
async function open(id) {
  current = await api('GET', `/api/notes/${id}`);
  $('note-id').textContent = current.id;
  $('note-text-shown').textContent = current.text;
  $('note').classList.remove('hidden');
  status(`note ${current.id} open`);
}
function failed(err) { status(`error: ${err.message}`); }

async function home() {
  if (!tokens()) {
    $('signed-out').classList.remove('hidden');
    status('signed out');
    return;
  }
  me = await api('GET', '/me');
  $('signed-in').classList.remove('hidden');
  await list();
}

function signOut() {
  const { id_token: idToken } = tokens();
  sessionStorage.removeItem('tokens');
  const url = new URL('/session/end', origin);
  url.search = new URLSearchParams({
    id_token_hint: idToken,
    post_logout_redirect_uri: AFTER_LOGOUT,
    state: random(16),
  });
  window.location.assign(url);
}

if (window.location.pathname.endsWith('/callback.html')) {
  callback().catch(failed);
} else {
  $('sign-in').addEventListener('click', () => { signIn().catch(failed); });
  $('sign-out').addEventListener('click', signOut);
  $('new-form').addEventListener('submit', (event) => {
    event.preventDefault();
    api('POST', '/api/notes', { text: $('note-text').value })
      .then((note) => { $('note-text').value = ''; return list().then(() => open(note.id)); })
      .catch(failed);
  });
  $('delete').addEventListener('click', () => {
    api('DELETE', `/api/notes/${current.id}`).then(list).catch(failed);
  });
  home().catch(failed);
}
