// Fraisier lab sample app: plain Node, no dependencies.
// GET /health  -> 200 "ok <version>" (or 500 "broken" when a BROKEN file sits next to this file)
// GET /        -> 200 "<version>\n"
//                 with an ERRORS file (a percentage, e.g. 20): that share of GET / answers 500, counted
//                 deterministically (request n fails when floor(n*p/100) steps up), health stays OK
//                 with a SLOW file (milliseconds, e.g. 300): GET / answers that much later, health stays OK
// GET /metrics -> Prometheus text: http_requests_total{code,path}, http_request_duration_seconds{path}
//                 (histogram), app_version_info{version}; /metrics itself is not counted

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const here = __dirname;
const readFile = (name) => {
  try {
    return fs.readFileSync(path.join(here, name), 'utf8').trim();
  } catch {
    return null;
  }
};
const version = readFile('VERSION') || 'unknown';
const errorPercent = Math.min(100, Math.max(0, Number(readFile('ERRORS') || 0) || 0));
const slowMs = Math.max(0, Number(readFile('SLOW') || 0) || 0);
const port = Number(process.env.PORT || 8000);

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const counts = new Map(); // `${path} ${code}` -> n
const histograms = new Map(); // path -> { buckets: number[], sum, count }
let rootRequests = 0;

function observe(p, code, seconds) {
  const key = `${p} ${code}`;
  counts.set(key, (counts.get(key) || 0) + 1);
  let h = histograms.get(p);
  if (!h) {
    h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
    histograms.set(p, h);
  }
  BUCKETS.forEach((le, i) => {
    if (seconds <= le) h.buckets[i] += 1;
  });
  h.sum += seconds;
  h.count += 1;
}

function metricsText() {
  const lines = ['# HELP http_requests_total Requests answered, by status code and path.', '# TYPE http_requests_total counter'];
  for (const [key, n] of counts) {
    const [p, code] = key.split(' ');
    lines.push(`http_requests_total{code="${code}",path="${p}"} ${n}`);
  }
  lines.push('# HELP http_request_duration_seconds Time to answer, by path.', '# TYPE http_request_duration_seconds histogram');
  for (const [p, h] of histograms) {
    BUCKETS.forEach((le, i) => {
      lines.push(`http_request_duration_seconds_bucket{path="${p}",le="${le}"} ${h.buckets[i]}`);
    });
    lines.push(`http_request_duration_seconds_bucket{path="${p}",le="+Inf"} ${h.count}`);
    lines.push(`http_request_duration_seconds_sum{path="${p}"} ${h.sum}`);
    lines.push(`http_request_duration_seconds_count{path="${p}"} ${h.count}`);
  }
  lines.push('# HELP app_version_info The release this process runs.', '# TYPE app_version_info gauge');
  lines.push(`app_version_info{version="${version}"} 1`);
  return `${lines.join('\n')}\n`;
}

const server = http.createServer((req, res) => {
  const url = (req.url || '/').split('?')[0];
  const started = process.hrtime.bigint();
  const send = (code, body, type = 'text/plain; charset=utf-8') => {
    res.writeHead(code, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
    if (url !== '/metrics') {
      const p = url === '/' || url === '/health' ? url : 'other';
      observe(p, code, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
  if (url === '/metrics') return send(200, metricsText(), 'text/plain; version=0.0.4; charset=utf-8');
  if (url === '/health') {
    if (fs.existsSync(path.join(here, 'BROKEN'))) return send(500, 'broken');
    return send(200, `ok ${version}`);
  }
  if (url === '/') {
    rootRequests += 1;
    const n = rootRequests;
    const fail = Math.floor((n * errorPercent) / 100) > Math.floor(((n - 1) * errorPercent) / 100);
    const answer = () => (fail ? send(500, `error ${version}\n`) : send(200, `${version}\n`));
    if (slowMs > 0) setTimeout(answer, slowMs);
    else answer();
    return;
  }
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
