// PostGraphile 4 as a library in a Node HTTP server: the GraphQL API at /graphql over the
// forum schema (schema.sql) and the client page in ./public at /, on one origin.
// Usage: node server.js MODULES DATABASE_URL JWT_SECRET DIR
//   MODULES  the node_modules holding postgraphile (target/apps/graphql/node_modules)
//   DIR      where requests.jsonl goes: one line per POST /graphql answered, {operation,
//            status, errors (the answer had GraphQL errors), person (the JWT's person_id)}
// Prints "listening on http://127.0.0.1:PORT" once the GraphQL schema is built and the port
// accepts connections.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');

const [modules, databaseUrl, jwtSecret, dir] = process.argv.slice(2);
const requests = fs.openSync(path.join(dir, 'requests.jsonl'), 'a');
const { postgraphile } = require(path.join(modules, 'postgraphile'));

const graphql = postgraphile(databaseUrl, 'forum', {
  jwtSecret,
  jwtPgTypeIdentifier: 'forum.jwt_token',
  pgDefaultRole: 'forum_anonymous',
  graphiql: false,
  disableQueryLog: true,
  retryOnInitFail: false,
  setofFunctionsContainNulls: false,
  ignoreRBAC: false,
  enableQueryBatching: false,
});

// Reads the body (PostGraphile's body-parser takes a req.body marked read as it is) and
// notes the answer.
async function audited(req, res) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  let body;
  try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { body = {}; }
  req.body = body;
  req._body = true; // body-parser's own mark of a body already read
  const bearer = /^Bearer [^.]+\.([^.]+)\./.exec(req.headers.authorization || '');
  let person = null;
  try { person = bearer ? JSON.parse(Buffer.from(bearer[1], 'base64url')).person_id : null; } catch {}
  const answer = [];
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  res.write = (chunk, ...rest) => { if (chunk) answer.push(Buffer.from(chunk)); return write(chunk, ...rest); };
  res.end = (chunk, ...rest) => {
    if (chunk && typeof chunk !== 'function') answer.push(Buffer.from(chunk));
    let errors = true;
    try { errors = Boolean(JSON.parse(Buffer.concat(answer).toString('utf8')).errors); } catch {}
    const match = /^\s*(?:query|mutation)\s+(\w+)/.exec(typeof body.query === 'string' ? body.query : '');
    const line = { operation: match ? match[1] : null, status: res.statusCode, errors, person };
    fs.writeSync(requests, `${JSON.stringify(line)}\n`);
    return end(chunk, ...rest);
  };
  return graphql(req, res);
}

const publicDir = path.join(__dirname, 'public');
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/graphql' && req.method === 'POST') {
    return audited(req, res).catch((err) => {
      console.error(err);
      res.statusCode = 500;
      res.end();
    });
  }
  if (url.pathname.startsWith('/graphql')) return graphql(req, res);
  if (req.method !== 'GET') {
    res.writeHead(405);
    return res.end();
  }
  const file = path.normalize(path.join(publicDir, url.pathname === '/' ? 'index.html' : url.pathname));
  if (!file.startsWith(publicDir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    return res.end('not found');
  }
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript' };
  res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
  return res.end(fs.readFileSync(file));
});

graphql.getGraphQLSchema().then(() => {
  server.listen(0, '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
}, (err) => {
  console.error(err);
  process.exit(1);
});
