'use strict';
// Node.js `ws` peer of the WebSocket fan-out benchmark (benchmarks/realtime.py).
//
//   PORT=8001 node server.js
//
// The same contract as the Python broadcast apps (benchmarks/reference/broadcast.py):
//   GET  /hello    -> 200 "Hello, world!" (readiness probe)
//   WS   /ws       -> subscribe: every published message arrives as one text frame
//   POST /publish  -> the body (text) is sent to every open subscriber; 200 {"subscribers": N}
// Nothing is logged per connection or message.
const http = require('http');
const { WebSocketServer, WebSocket } = require('ws');

const PORT = process.env.PORT;
if (!PORT || !/^\d+$/.test(PORT)) {
  console.error('PORT environment variable is required');
  process.exit(2);
}

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

function publish(text) {
  let sent = 0;
  for (const client of wss.clients) {
    if (client.readyState === WebSocket.OPEN) {
      client.send(text);
      sent += 1;
    }
  }
  return sent;
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/hello') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('Hello, world!');
    return;
  }
  if (req.method === 'POST' && req.url === '/publish') {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const sent = publish(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ subscribers: sent }));
    });
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found');
});

server.on('upgrade', (req, socket, head) => {
  if (req.url !== '/ws') {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => {}); // a subscriber that goes away ends only its own connection
  });
});

server.listen(Number(PORT), '127.0.0.1', 1024);
