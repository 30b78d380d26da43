// Stands in for @heroku/socksv5 in the bundle (`npm run bundle`). ssh2-promise requires it at load
// time for SOCKS tunnels, which Fraisier never opens; loading it (lodash, ip-address, its server
// modules) was a noticeable part of loading the SSH code before the first handshake. The real module
// is loaded on first use, if any.
let real;
module.exports = new Proxy(
  {},
  {
    get: (_, key) => {
      real ??= require(['@heroku', 'socksv5'].join('/'));
      return real[key];
    },
  },
);
