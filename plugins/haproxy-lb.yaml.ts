/** The YAML of the haproxy-lb plugin: `load_balancer:` with `type: haproxy`. */
import { Type } from '../core/typebox.js';
import { DurationSchema, NonEmptyString } from '../core/config/schema.js';
import { registry } from '../core/registry.js';
import { absolutePath, checkLbHost, type LoadBalancerYaml } from './load-balancer.yaml.js';

/** `load_balancer:` with `type: haproxy` — the runtime API over the admin socket, no reload. */
export const HaproxyLoadBalancerSchema = Type.Object(
  {
    type: Type.Literal('haproxy'),
    /** The admin socket (`stats socket <path> level admin`). Required. */
    socket: Type.Optional(NonEmptyString()),
    /** The backend holding the instances' servers. Default: the fraise name. */
    backend: Type.Optional(NonEmptyString()),
    /** HAProxy server name of each instance, when it is not the instance's name (optional). */
    servers: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), NonEmptyString(), {
        expected: 'a mapping of instance names to host:port addresses (nginx) or server names (haproxy)',
      }),
    ),
    /** socat binary. Default `socat`. */
    socat: Type.Optional(NonEmptyString()),
    /** Where the live blue-green pool is recorded. Default: next to the socket. */
    pool_file: Type.Optional(NonEmptyString()),
    /** SSH host running HAProxy. Default: this machine. */
    host: Type.Optional(NonEmptyString()),
    /** Longest wait for in-flight requests after draining a host. Default 10s. */
    drain_timeout: Type.Optional(DurationSchema),
  },
  { additionalProperties: false },
);

registry.registerPlugin({
  name: 'haproxy',
  field: 'loadBalancer',
  variant: 'load_balancer',
  keys: { load_balancer: Type.Optional(HaproxyLoadBalancerSchema) },
  normalize({ load_balancer: lb }, ctx): LoadBalancerYaml | undefined {
    if (lb === undefined) return undefined;
    checkLbHost(lb.host, ctx);
    if (lb.socket === undefined)
      throw ctx.error(ctx.at('load_balancer'), "type: haproxy needs socket: the absolute path of HAProxy's admin socket (stats socket <path> level admin)");
    absolutePath(lb.socket, 'socket', ctx);
    return {
      type: 'haproxy',
      socket: lb.socket,
      ...(lb.servers !== undefined ? { servers: { ...lb.servers } } : {}),
      ...(lb.backend !== undefined ? { backend: lb.backend } : {}),
      ...(lb.socat !== undefined ? { socat: lb.socat } : {}),
      ...(lb.pool_file !== undefined ? { poolFile: lb.pool_file } : {}),
      ...(lb.host !== undefined ? { host: lb.host } : {}),
      ...(lb.drain_timeout !== undefined ? { drainTimeoutMs: ctx.ms(lb.drain_timeout, ctx.at('load_balancer', 'drain_timeout')) } : {}),
    };
  },
});
