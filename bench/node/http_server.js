// http_server.js — workload E: a keep-alive HTTP/1.1 "hello" server on Node's http module.
// usage: node http_server.js PORT [HOST]
'use strict';
const http = require('http');
const port = Number(process.argv[2] || 8080);
const host = process.argv[3] || '127.0.0.1';

const BODY = 'Hello, World!';
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
});
server.listen({ port, host, backlog: 1024 });
