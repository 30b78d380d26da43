/**
 * The YAML side of the built-in providers, strategies and plugins: importing this module registers
 * their names, schema fragments and normalizers (not their implementations, which `index.ts` loads).
 * The config loader imports it, so that every entry point (the `fraisier` command, a deploy.ts, the
 * read-only commands' bundle) knows the built-ins. Registration order is the order hooks run in:
 * pre-deployment hooks, then migrations, then the load balancer.
 */
import './providers/bare-metal.yaml.js';
import './providers/coolify.yaml.js';
import './strategies/rolling.yaml.js';
import './strategies/canary.yaml.js';
import './strategies/blue-green.yaml.js';
import './plugins/hooks.yaml.js';
import './plugins/psql-migration.yaml.js';
import './plugins/nginx-lb.yaml.js';
import './plugins/haproxy-lb.yaml.js';
import './plugins/notify.yaml.js';
import './plugins/metrics/sources.yaml.js';
