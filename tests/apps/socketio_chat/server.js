// A chat on Socket.IO 4.8 (npm, target/apps/socketio_chat), the client page in ./public.
// Usage: NODE_PATH=target/apps/socketio_chat/node_modules node server.js DIR
// DIR/accounts.json ([{username, password}]) holds the accounts. The HTTP API logs in
// (POST /api/login {username, password} -> {token, username}) and out (POST /api/logout with
// `Authorization: Bearer TOKEN`); the socket is Socket.IO's own, as it ships: the browser
// client it serves (/socket.io/socket.io.min.js) connects by long-polling and upgrades to a
// WebSocket, and hands the token over in its CONNECT packet (`auth: {token}`), which the
// server checks before it accepts the socket. Over the socket, with acknowledgements:
//   join(room)               -> {room, members}
//   message({room, text})    -> {id}: a message id the server makes up, broadcast to the room
//   edit({id, text})         -> {id, text}, or {error} unless the message is the user's own
// Every event the server received is appended to DIR/events.jsonl ({user, engine, event,
// args, outcome}: `engine` is the Engine.IO session id the event came over, the user the one
// the token was issued to), and the messages as stored to DIR/messages.json on each change,
// so a test judges what the server did. Prints "listening on http://127.0.0.1:PORT".
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { Server } = require('socket.io');

const dir = process.argv[2];
const accounts = JSON.parse(fs.readFileSync(path.join(dir, 'accounts.json'), 'utf8'));
const tokens = new Map(); // token -> username
const messages = new Map(); // id -> {id, user, room, text, edited}
const events = fs.openSync(path.join(dir, 'events.jsonl'), 'a');

function log(line) {
  fs.writeSync(events, JSON.stringify(line) + '\n');
}

function saveMessages() {
  const file = path.join(dir, 'messages.json');
  fs.writeFileSync(`${file}.tmp`, JSON.stringify([...messages.values()]));
  fs.renameSync(`${file}.tmp`, file);
}

function readJson(req, done) {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => {
    body += chunk;
    if (body.length > 10000) req.destroy();
  });
  req.on('end', () => {
    try {
      done(JSON.parse(body || '{}'));
    } catch (_err) {
      done(null);
    }
  });
}

function answer(res, status, value) {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(value));
}

function bearer(req) {
  const found = /^Bearer (.+)$/.exec(req.headers.authorization || '');
  return found ? found[1] : null;
}

const publicDir = path.join(__dirname, 'public');
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'POST' && url.pathname === '/api/login') {
    readJson(req, (body) => {
      const account = body && accounts.find((a) => a.username === body.username);
      if (!account || account.password !== body.password) {
        log({ user: null, event: 'login', args: [body && body.username], outcome: 'refused' });
        answer(res, 401, { error: 'wrong username or password' });
        return;
      }
      const token = crypto.randomBytes(16).toString('hex');
      tokens.set(token, account.username);
      log({ user: account.username, event: 'login', args: [], outcome: 'ok' });
      answer(res, 200, { token, username: account.username });
    });
    return;
  }
  if (req.method === 'POST' && url.pathname === '/api/logout') {
    const user = tokens.get(bearer(req));
    tokens.delete(bearer(req));
    log({ user: user || null, event: 'logout', args: [], outcome: user ? 'ok' : 'unknown token' });
    answer(res, user ? 200 : 401, user ? { ok: true } : { error: 'not logged in' });
    return;
  }
  if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(fs.readFileSync(path.join(publicDir, 'index.html')));
    return;
  }
  answer(res, 404, { error: 'not found' });
});

const io = new Server(server);
io.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  const user = tokens.get(token);
  if (!user) {
    log({ user: null, engine: socket.conn.id, event: 'connect', args: [], outcome: 'unknown token' });
    next(new Error('not logged in'));
    return;
  }
  socket.data.user = user;
  next();
});

io.on('connection', (socket) => {
  const user = socket.data.user;
  const engine = socket.conn.id;
  log({ user, engine, event: 'connect', args: [], outcome: 'ok' });
  const record = (event, args, outcome) => log({ user, engine, event, args, outcome });
  socket.on('join', (room, ack) => {
    if (typeof room !== 'string' || typeof ack !== 'function') {
      record('join', [room], 'bad request');
      return;
    }
    socket.join(room);
    record('join', [room], 'ok');
    ack({ room, members: io.sockets.adapter.rooms.get(room).size });
  });
  socket.on('message', (body, ack) => {
    if (!body || typeof body.text !== 'string' || typeof ack !== 'function') {
      record('message', [body], 'bad request');
      return;
    }
    if (!socket.rooms.has(body.room)) {
      record('message', [body], 'not in the room');
      ack({ error: 'join the room first' });
      return;
    }
    const id = `m${crypto.randomBytes(6).toString('hex')}`;
    const message = { id, user, room: body.room, text: body.text, edited: false };
    messages.set(id, message);
    saveMessages();
    record('message', [body], 'ok');
    io.to(body.room).emit('message', { id, user, text: body.text });
    ack({ id });
  });
  socket.on('edit', (body, ack) => {
    if (!body || typeof body.text !== 'string' || typeof ack !== 'function') {
      record('edit', [body], 'bad request');
      return;
    }
    const message = messages.get(body.id);
    if (!message || message.user !== user) {
      record('edit', [body], message ? 'not the user\'s own' : 'unknown id');
      ack({ error: 'no such message of yours' });
      return;
    }
    message.text = body.text;
    message.edited = true;
    saveMessages();
    record('edit', [body], 'ok');
    io.to(message.room).emit('edited', { id: message.id, text: message.text });
    ack({ id: message.id, text: message.text });
  });
  socket.on('disconnect', (reason) => record('disconnect', [reason], 'ok'));
});

server.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
