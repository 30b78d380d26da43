/**
 * The YAML of the blue_green strategy: `blue_green_config:`, its normalizer, and the seed's
 * two-environment form (`<name>_blue` / `<name>_green` with `load_balancer.target`), which this
 * strategy pairs into one blue-green environment.
 */
import { Type } from '../core/typebox.js';
import { DurationSchema, NonEmptyString } from '../core/config/schema.js';
import { registry, type FraiseEnvironments, type NormalizedEnvironment, type Segment, type YamlContext } from '../core/registry.js';
import { BakeSchema, normalizeBake, type BakeBlock, type BakeYaml } from './bake.yaml.js';

const HostList = Type.Array(NonEmptyString(), { minItems: 1, uniqueItems: true, expected: 'a non-empty list of distinct host names' });

/** `blue_green_config:` — the two colours of a blue-green environment and the check before the switch. */
export const BlueGreenConfigSchema = Type.Object(
  {
    /** Instances of the blue colour (with `deployment_strategy: blue_green`). */
    blue: Type.Optional(HostList),
    /** Instances of the green colour. */
    green: Type.Optional(HostList),
    /**
     * Run on the deploying machine after the idle colour passed its health checks, before the switch;
     * gets FRAISIER_IDLE_URL, FRAISIER_IDLE_URLS, FRAISIER_IDLE_COLOUR, FRAISIER_VERSION. Non-zero: no switch.
     */
    verify_command: Type.Optional(NonEmptyString()),
    /** Longest the verification may run. Default 5m. */
    verify_timeout: Type.Optional(DurationSchema),
    /**
     * Bake time: after the switch, the analysis watches the new colour for `duration`, the old colour kept
     * ready; a failure switches back to it at once and rolls the new colour back. Same keys as rolling_config.bake.
     */
    bake: Type.Optional(BakeSchema),
  },
  { additionalProperties: false },
);

/** The normalized options of the blue-green strategy (`env.strategy` with `type: 'blue_green'`). */
export interface BlueGreenYaml {
  blue: string[];
  green: string[];
  verifyCommand?: string;
  verifyTimeoutMs?: number;
  /** `blue_green_config.bake`, when given: its duration and the analysis its thresholds stand for. */
  bake?: BakeYaml;
}

declare module '../core/registry.js' {
  interface StrategyOptionsByName {
    blue_green: BlueGreenYaml;
  }
}

type Block = {
  blue_green_config?: { blue?: string[]; green?: string[]; verify_command?: string; verify_timeout?: number | string; bake?: BakeBlock };
};
/** What a colour environment of the seed's form brings to the pair besides its hosts: the verification and the bake. */
type Verify = Pick<BlueGreenYaml, 'verifyCommand' | 'verifyTimeoutMs' | 'bake'>;

/** The verification of a colour environment of the seed's form, kept until the pair is merged. */
const colourVerify = new WeakMap<object, Verify>();

function verifyOf(block: Block, ctx: YamlContext): Verify {
  const bg = block.blue_green_config;
  return {
    ...(bg?.verify_command !== undefined ? { verifyCommand: bg.verify_command } : {}),
    ...(bg?.verify_timeout !== undefined ? { verifyTimeoutMs: ctx.ms(bg.verify_timeout, ctx.at('blue_green_config', 'verify_timeout')) } : {}),
    ...(bg?.bake !== undefined ? { bake: normalizeBake(bg.bake, ctx, 'blue_green_config') } : {}),
  };
}

/** The colour of an environment of the seed's form (`load_balancer.target`), if any. */
function targetOf(raw: Readonly<Record<string, unknown>> | undefined): 'blue' | 'green' | undefined {
  const lb = raw?.['load_balancer'] as { target?: 'blue' | 'green' } | undefined;
  return lb?.target;
}

registry.registerStrategy({
  name: 'blue_green',
  keys: { blue_green_config: Type.Optional(BlueGreenConfigSchema) },
  sectionKeys: {
    load_balancer: {
      /**
       * Blue-green written as two environments, `<name>_blue` and `<name>_green`: the colour this
       * environment is. The pair becomes one blue-green environment `<name>`.
       */
      target: Type.Optional(Type.Union([Type.Literal('blue'), Type.Literal('green')])),
    },
  },
  normalize(block: Block, ctx): BlueGreenYaml {
    const bg = block.blue_green_config;
    const instances = ctx.env.instances ?? [];
    if (!bg?.blue || !bg.green) {
      throw ctx.error(
        bg ? ctx.at('blue_green_config') : ctx.segs,
        'deployment_strategy blue_green needs blue_green_config with blue: [...] and green: [...] (the instances of each colour)',
      );
    }
    if (ctx.raw['load_balancer'] === undefined)
      throw ctx.error(ctx.at('deployment_strategy'), 'deployment_strategy blue_green needs a load_balancer (it switches traffic between the colours)');
    if (targetOf(ctx.raw) !== undefined) {
      throw ctx.error(
        ctx.at('load_balancer', 'target'),
        'load_balancer.target is for the two-environment form (<name>_blue / <name>_green); with deployment_strategy blue_green, list the colours in blue_green_config',
      );
    }
    const { blue, green } = bg;
    const both = blue.filter((h) => green.includes(h));
    if (both.length > 0) throw ctx.error(ctx.at('blue_green_config', 'green'), `${both.join(', ')} cannot be both blue and green`);
    const coloured = [...blue, ...green];
    const unknown = coloured.filter((h) => !instances.includes(h));
    if (unknown.length > 0)
      throw ctx.error(ctx.at('blue_green_config'), `${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not in instances (${instances.join(', ')})`);
    const none = instances.filter((h) => !coloured.includes(h));
    if (none.length > 0) throw ctx.error(ctx.at('blue_green_config'), `instance(s) ${none.join(', ')} in no colour: every instance is blue or green`);
    return { blue: [...blue], green: [...green], ...verifyOf(block, ctx) };
  },
  unselected(block: Block, ctx) {
    const bg = block.blue_green_config;
    if (bg !== undefined && (bg.blue !== undefined || bg.green !== undefined)) {
      throw ctx.error(
        ctx.at('blue_green_config'),
        `blue_green_config lists colours but deployment_strategy is ${ctx.env.strategy.type}: set deployment_strategy: blue_green`,
      );
    }
    if (bg?.bake !== undefined && targetOf(ctx.raw) === undefined) {
      throw ctx.error(
        ctx.at('blue_green_config', 'bake'),
        `blue_green_config.bake is a blue-green setting but deployment_strategy is ${ctx.env.strategy.type}: set deployment_strategy: blue_green${ctx.env.strategy.type === 'rolling' ? ', or move it to rolling_config.bake' : ''}`,
      );
    }
    colourVerify.set(ctx.env, verifyOf(block, ctx));
  },
  environments: pairColours,
});

/**
 * The seed's two-environment form of blue-green: `<name>_blue` and `<name>_green`, each with
 * `load_balancer.target` set to its colour, become one blue-green environment `<name>` (same app,
 * service, health check and load balancer; the instances and servers of both). The colour environments
 * themselves are replaced by it: deploying one colour alone would bypass the switch.
 */
function pairColours({ fraise, environments, raw, error }: FraiseEnvironments): void {
  const segsOf = (env: string, ...rest: Segment[]): Segment[] => ['fraises', fraise, 'environments', env, ...rest];
  const coloured = Object.values(environments).filter((e) => targetOf(raw[e.name]) !== undefined);
  const done = new Set<string>();
  for (const e of coloured) {
    if (done.has(e.name)) continue;
    const colour = targetOf(raw[e.name])!;
    const other = colour === 'blue' ? 'green' : 'blue';
    if (!e.name.endsWith(`_${colour}`)) {
      throw error(
        segsOf(e.name, 'load_balancer', 'target'),
        `an environment with load_balancer.target: ${colour} must be named <name>_${colour} (e.g. production_${colour}), got ${JSON.stringify(e.name)}`,
      );
    }
    const base = e.name.slice(0, -colour.length - 1);
    const mate = environments[`${base}_${other}`];
    if (!mate || targetOf(raw[mate.name]) !== other) {
      throw error(
        segsOf(e.name, 'load_balancer', 'target'),
        `${e.name} is the ${colour} colour of ${base}, but there is no ${base}_${other} environment with load_balancer.target: ${other}`,
      );
    }
    if (environments[base]) throw error(segsOf(base), `${base}_blue and ${base}_green form the blue-green environment ${base}: rename this one`);
    const [blue, green] = colour === 'blue' ? [e, mate] : [mate, e];
    // Everything but the instances and servers must agree, or the colours would not be twins.
    const twin = (n: NormalizedEnvironment) =>
      JSON.stringify({ ...n, name: '', keyPath: '', instances: [], strategy: null, loadBalancer: n.loadBalancer ? { ...n.loadBalancer, servers: {} } : null });
    if (twin(blue) !== twin(green)) {
      throw error(
        segsOf(green.name),
        `${blue.name} and ${green.name} must differ only in instances and load_balancer.servers (same app_path, source, service, health check and load balancer file)`,
      );
    }
    const blueHosts = blue.instances ?? [];
    const greenHosts = green.instances ?? [];
    const both = blueHosts.filter((h) => greenHosts.includes(h));
    if (both.length > 0) throw error(segsOf(green.name, 'instances'), `${both.join(', ')} cannot be both blue and green`);
    const verify = { ...colourVerify.get(blue), ...colourVerify.get(green) };
    const merged: NormalizedEnvironment = {
      ...blue,
      name: base,
      keyPath: `${blue.keyPath} + ${green.name}`,
      instances: [...blueHosts, ...greenHosts],
      strategy: { type: 'blue_green', blue: [...blueHosts], green: [...greenHosts], ...verify },
      ...(blue.loadBalancer ? { loadBalancer: { ...blue.loadBalancer, servers: { ...blue.loadBalancer.servers, ...green.loadBalancer?.servers } } } : {}),
    };
    delete environments[blue.name];
    delete environments[green.name];
    environments[base] = merged;
    done.add(blue.name).add(green.name);
  }
}
