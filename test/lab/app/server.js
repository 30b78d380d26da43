// Fraisier lab sample app: plain Node, no dependencies.
// GET /health -> 200 "ok <version>" (or 500 "broken" when a BROKEN file sits next to this file)
// GET /       -> 200 "<version>\n"

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const here = __dirname;
const version = (() => {
  try {
    return fs.readFileSync(path.join(here, 'VERSION'), 'utf8').trim();
  } catch {
    return 'unknown';
  }
})();
const port = Number(process.env.PORT || 8000);

const server = http.createServer((req, res) => {
  const url = (req.url || '/').split('?')[0];
  const send = (code, body) => {
    res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  if (url === '/health') {
    if (fs.existsSync(path.join(here, 'BROKEN'))) return send(500, 'broken');
    return send(200, `ok ${version}`);
  }
  if (url === '/') return send(200, `${version}\n`);
  return send(404, 'not found\n');
});
server.keepAliveTimeout = 2000;

server.listen(port, '0.0.0.0', () => {
  console.log(`app ${version} listening on 0.0.0.0:${port} pid ${process.pid}`);
});

let closing = false;
function shutdown(sig) {
  if (closing) return;
  closing = true;
  console.log(`app ${version} got ${sig}, closing`);
  server.close(() => process.exit(0));
  if (server.closeIdleConnections) server.closeIdleConnections();
  setTimeout(() => {
    if (server.closeAllConnections) server.closeAllConnections();
    process.exit(0);
  }, 3000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
