// The least a Node program does to ask a host something over SSH, a floor for `fraisier status`
// (bench/cold-start.ts): load ssh2 (from node_modules, no code cache), open a TCP connection with
// TCP_NODELAY, log in with a key file, run `true`, exit. No host key check, no SSH config, no state:
// not a tool, only the cost of Node, ssh2, one login and one command.
// `node bench/ssh-floor.cjs <address> <key file>` (user root, port 22: the bench lab's hosts).
const net = require('node:net');
const fs = require('node:fs');
const { Client } = require('ssh2');

const [host, key] = process.argv.slice(2);
const sock = net.connect({ host, port: 22, noDelay: true });
const client = new Client();
client.on('ready', () =>
  client.exec('true', (err, stream) => {
    if (err) throw err;
    stream.on('close', (code) => process.exit(code === 0 ? 0 : 1)).resume();
  }),
);
client.on('error', (e) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
client.connect({ sock, username: 'root', privateKey: fs.readFileSync(key), hostVerifier: () => true });
