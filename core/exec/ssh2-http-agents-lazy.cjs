// Stands in for ssh2's lib/http-agents.js in the `fraisier` command's bundle (scripts/bundle-cli.mjs).
// ssh2 loads it at load time for its HTTP(S)-over-SSH agents, which Fraisier never uses; it requires
// node:http, node:https and node:tls, whose load was part of every deploy's start. The real module is
// loaded on first use, if any.
let real;
const load = () => {
  real ??= require(['ssh2', 'lib', 'http-agents.js'].join('/'));
  return real;
};
module.exports = {
  HTTPAgent: function HTTPAgent(...args) {
    return new (load().HTTPAgent)(...args);
  },
  HTTPSAgent: function HTTPSAgent(...args) {
    return new (load().HTTPSAgent)(...args);
  },
};
