// echo_server.js — workload D: a TCP echo server on net (each socket piped into itself,
// which writes back what it reads and pauses reading while the write buffer is full).
// usage: node echo_server.js PORT [HOST]
'use strict';
const net = require('net');
const port = Number(process.argv[2] || 8000);
const host = process.argv[3] || '127.0.0.1';

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.listen({ port, host, backlog: 1024 });
