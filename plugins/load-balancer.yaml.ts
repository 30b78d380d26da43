/**
 * The normalized `load_balancer:` section, shared by the plugins that own it by `type`
 * (plugins/nginx-lb.yaml.ts, plugins/haproxy-lb.yaml.ts).
 */
import { hostProblem } from '../core/config/checks.js';
import type { YamlContext } from '../core/registry.js';

/** `load_balancer:` after normalization (nginx or haproxy). */
export interface LoadBalancerYaml {
  type: 'nginx' | 'haproxy';
  /** nginx: the generated upstream file (required for nginx). */
  file?: string;
  /** nginx: addresses (required); haproxy: server names (optional). */
  servers?: Record<string, string>;
  /** nginx: `passive` or `reload`. */
  drain?: 'passive' | 'reload';
  maxFails?: number;
  failTimeoutMs?: number;
  /** haproxy: the admin socket (required for haproxy). */
  socket?: string;
  backend?: string;
  socat?: string;
  poolFile?: string;
  upstream?: string;
  host?: string;
  nginx?: string;
  nginxArgs?: string[];
  pidFile?: string;
  drainTimeoutMs?: number;
  /** nginx: the JSON access log for the `nginx` metric source (absolute path). */
  accessLog?: string;
  /** The seed's colour form (`<name>_blue`/`<name>_green`) is paired by the blue_green strategy: never set after loading. */
  target?: 'blue' | 'green';
}

declare module '../core/registry.js' {
  interface NormalizedEnvironment {
    /** `load_balancer:` (nginx or haproxy), when present. */
    loadBalancer?: LoadBalancerYaml;
  }
}

/** `load_balancer.host` is an SSH host name: checked at load, as instances are. */
export function checkLbHost(host: string | undefined, ctx: YamlContext): void {
  if (host === undefined) return;
  const problem = hostProblem(host);
  if (problem) throw ctx.error(ctx.at('load_balancer', 'host'), problem);
}

/** An absolute path, or an error naming `load_balancer.<key>`. */
export function absolutePath(value: string, key: string, ctx: YamlContext): string {
  if (!value.startsWith('/'))
    throw ctx.error(ctx.at('load_balancer', key), `expected an absolute path (starting with /), got ${ctx.show(ctx.at('load_balancer', key), value)}`);
  return value;
}
