// json-server 0.17 with json-server-auth 2 over DIR/db.json, the client page in ./public.
// Usage: NODE_PATH=target/apps/json_server_auth/node_modules node server.js DIR
// DIR/accounts.json ([{username, email, password}]) seeds DIR/db.json when that file does not
// exist yet: the users with bcrypt hashes (cost 4, which json-server-auth's bcrypt.compare
// accepts like its own cost 10, only faster) and one welcome post each (ids 1..N, so that a
// new post's id is not the id of its user, as in an application that has data). Rules: a user reads only when
// logged in, writes only their own posts (640) and no other user (600).
// Every write the API answered is appended to DIR/writes.jsonl ({method, path, status, sub,
// body without a password}: sub is the JWT's subject, the user id the request was authorised
// as), so a test can count what the server did, deletions included.
// Prints "listening on http://127.0.0.1:PORT" once it accepts connections.
'use strict';
const fs = require('fs');
const path = require('path');
const bcrypt = require('bcryptjs');
const jwt = require('jsonwebtoken');
const jsonServer = require('json-server');
const auth = require('json-server-auth');

const dir = process.argv[2];
const db = path.join(dir, 'db.json');
if (!fs.existsSync(db)) {
  const accounts = JSON.parse(fs.readFileSync(path.join(dir, 'accounts.json'), 'utf8'));
  const users = accounts.map((account, index) => ({
    id: index + 1,
    email: account.email,
    password: bcrypt.hashSync(account.password, 4),
    username: account.username,
  }));
  const posts = users.map((user) => ({
    id: user.id,
    title: `Welcome, ${user.username}`,
    body: 'Your first post.',
    userId: user.id,
  }));
  fs.writeFileSync(db, JSON.stringify({ users, posts }, null, 2));
}

const app = jsonServer.create();
const router = jsonServer.router(db);
app.db = router.db;
const writes = fs.openSync(path.join(dir, 'writes.jsonl'), 'a');
app.use((req, res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
  const url = req.originalUrl;
  res.on('finish', () => {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    const claims = bearer ? jwt.decode(bearer[1]) : null;
    const { password, ...body } = req.body || {};
    const line = { method: req.method, path: url, status: res.statusCode, sub: claims ? claims.sub : null, body };
    fs.writeSync(writes, JSON.stringify(line) + '\n');
  });
  next();
});
app.use(jsonServer.defaults({ static: path.join(__dirname, 'public'), logger: false }));
app.use(auth.rewriter({ users: 600, posts: 640 }));
app.use(auth);
app.use(router);
const server = app.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
