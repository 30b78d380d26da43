/** The YAML of the nginx-lb plugin: `load_balancer:` with `type: nginx`. */
import { Type } from '../core/typebox.js';
import { DurationSchema, NonEmptyString } from '../core/config/schema.js';
import { registry } from '../core/registry.js';
import { absolutePath, checkLbHost, type LoadBalancerYaml } from './load-balancer.yaml.js';

/** `load_balancer:` with `type: nginx` — a generated upstream file and reloads. */
export const NginxLoadBalancerSchema = Type.Object(
  {
    type: Type.Literal('nginx'),
    /** The upstream file Fraisier owns and rewrites (absolute path); include it from your nginx config. Required. */
    file: Type.Optional(NonEmptyString()),
    /** Backend address of each instance, e.g. `h1: 10.0.0.11:8000` (required). */
    servers: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), NonEmptyString(), {
        expected: 'a mapping of instance names to host:port addresses (nginx) or server names (haproxy)',
      }),
    ),
    /** `passive` (default, no reload while a host restarts) or `reload` (mark down + reload, two per host). */
    drain: Type.Optional(Type.Union([Type.Literal('passive'), Type.Literal('reload')], { expected: '"passive" or "reload"' })),
    /** `max_fails` on every server line. Default 0 with drain: passive. */
    max_fails: Type.Optional(Type.Integer({ minimum: 0, expected: 'a non-negative integer' })),
    /** `fail_timeout` on every server line (whole seconds). */
    fail_timeout: Type.Optional(DurationSchema),
    /** Upstream name. Default: the fraise name. */
    upstream: Type.Optional(NonEmptyString()),
    /** SSH host running nginx. Default: this machine. */
    host: Type.Optional(NonEmptyString()),
    /** nginx binary. Default `nginx`. */
    nginx: Type.Optional(NonEmptyString()),
    /** Extra arguments for `nginx -t` (e.g. `-p`, `-c`). */
    nginx_args: Type.Optional(Type.Array(NonEmptyString())),
    /** nginx master pid file. Default: read from `nginx -T`. */
    pid_file: Type.Optional(NonEmptyString()),
    /** Longest wait for in-flight requests after draining a host (drain: reload). Default 5s. */
    drain_timeout: Type.Optional(DurationSchema),
    /** A JSON access log written by nginx for the `nginx` metric source (absolute path). Default: none. */
    access_log: Type.Optional(NonEmptyString()),
  },
  { additionalProperties: false },
);

registry.registerPlugin({
  name: 'nginx',
  field: 'loadBalancer',
  variant: 'load_balancer',
  keys: { load_balancer: Type.Optional(NginxLoadBalancerSchema) },
  normalize({ load_balancer: lb }, ctx): LoadBalancerYaml | undefined {
    if (lb === undefined) return undefined;
    checkLbHost(lb.host, ctx);
    if (lb.file === undefined)
      throw ctx.error(
        ctx.at('load_balancer'),
        'type: nginx needs file: the absolute path of the upstream file Fraisier writes (include it from your nginx config)',
      );
    if (lb.servers === undefined) throw ctx.error(ctx.at('load_balancer'), 'type: nginx needs servers: the host:port address of every instance');
    const servers = lb.servers;
    absolutePath(lb.file, 'file', ctx);
    const missing = (ctx.env.instances ?? []).filter((i) => !(i in servers));
    if (missing.length > 0) {
      throw ctx.error(ctx.at('load_balancer', 'servers'), `missing the address of instance(s) ${missing.join(', ')}: every instance needs a server line`);
    }
    const ms = (v: number | string, key: string) => ctx.ms(v, ctx.at('load_balancer', key));
    return {
      type: 'nginx',
      file: lb.file,
      servers: { ...servers },
      ...(lb.drain !== undefined ? { drain: lb.drain } : {}),
      ...(lb.max_fails !== undefined ? { maxFails: lb.max_fails } : {}),
      ...(lb.fail_timeout !== undefined ? { failTimeoutMs: ms(lb.fail_timeout, 'fail_timeout') } : {}),
      ...(lb.upstream !== undefined ? { upstream: lb.upstream } : {}),
      ...(lb.host !== undefined ? { host: lb.host } : {}),
      ...(lb.nginx !== undefined ? { nginx: lb.nginx } : {}),
      ...(lb.nginx_args !== undefined ? { nginxArgs: [...lb.nginx_args] } : {}),
      ...(lb.pid_file !== undefined ? { pidFile: lb.pid_file } : {}),
      ...(lb.drain_timeout !== undefined ? { drainTimeoutMs: ms(lb.drain_timeout, 'drain_timeout') } : {}),
      ...(lb.access_log !== undefined ? { accessLog: absolutePath(lb.access_log, 'access_log', ctx) } : {}),
    };
  },
});
