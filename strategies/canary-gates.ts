/**
 * The canary's gates (Flagger's webhooks): a command run on the machine running fraisier, or an http(s)
 * URL that gets a JSON POST. A non-zero exit, a non-2xx answer, a timeout or an unreachable URL halts.
 * See docs/canary.md ("Gates").
 */
import { spawn } from 'node:child_process';
import { toMs, type Duration } from '../core/duration.js';
import { FraisierError } from '../core/errors.js';
import { redact } from '../core/secret.js';

/** A gate: a shell command (run locally with `sh -c`) or an `http://` / `https://` URL (POST JSON). */
export type Gate = string;

/** The canary's gates; each is optional. */
export interface CanaryGates {
  /**
   * Runs before each traffic increase (before every weighted step). A failure halts the canary at the
   * step before (status `canary`): `fraisier promote` continues past the gate, `rollback` aborts.
   */
  beforeStep?: Gate;
  /** Runs before the rest of the fleet is promoted. A failure halts the canary at its last step, as above. */
  confirmPromotion?: Gate;
  /** Runs when the canary is aborted (a failed verdict, a failed health check, `rollback`); a failure only warns. */
  onRollback?: Gate;
  /** How long a gate may take before it counts as failed. Default `30s`. */
  timeout?: Duration;
}

/** The gates' names as in the YAML (`canary_config.gates`). */
export type GateName = 'before_step' | 'confirm_promotion' | 'on_rollback';

/** What a gate is told: the environment variables of a command, the JSON body of a URL. */
export interface GateContext {
  /** The fraise deployed (`FRAISIER_FRAISE`). */
  fraise: string;
  /** The environment (`FRAISIER_ENVIRONMENT`). */
  environment: string;
  /** The canary's release (`FRAISIER_VERSION`). */
  version: string;
  /** 1-based step number (the step about to start, or the last step for confirm_promotion/on_rollback). */
  step: number;
  /** The canary's share of requests (percent) the step sets or has; null: its natural share. */
  weight: number | null;
}

/** The outcome of one gate: whether it passed, and its output or error (redacted, trimmed). */
export interface GateResult {
  /** True when the gate passed (exit 0, or a 2xx answer). */
  ok: boolean;
  /** `exit N: output`, `HTTP N: body`, or why it could not run. */
  detail: string;
}

const isUrl = (g: string) => /^https?:\/\//i.test(g);

/** Checks a gate value; throws E_CONFIG naming `key` when it is neither a command nor an http(s) URL. */
export function checkGate(value: unknown, key: string): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new FraisierError('E_CONFIG', `canary: ${key} must be a command or an http(s) URL, got ${JSON.stringify(value)}`, { key });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && !isUrl(value)) {
    throw new FraisierError('E_CONFIG', `canary: ${key} must be a command or an http(s) URL, got ${JSON.stringify(redact(value))}`, { key });
  }
  if (isUrl(value)) {
    try {
      new URL(value);
    } catch {
      throw new FraisierError('E_CONFIG', `canary: ${key} is not a valid URL: ${JSON.stringify(redact(value))}`, { key });
    }
  }
}

/** Last 500 characters, redacted, on one line. */
function tail(text: string): string {
  const t = redact(text.trim()).replace(/\s+/g, ' ');
  return t.length > 500 ? `…${t.slice(-500)}` : t;
}

/** Runs one gate with its timeout; never throws (a failure is `ok: false` with its reason). */
export async function runGate(gate: Gate, name: GateName, ctx: GateContext, timeout: Duration = '30s', signal?: AbortSignal): Promise<GateResult> {
  const ms = toMs(timeout, 'gates.timeout');
  if (isUrl(gate)) {
    const s = AbortSignal.timeout(ms);
    try {
      const res = await fetch(gate, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ gate: name, ...ctx }),
        signal: signal ? AbortSignal.any([s, signal]) : s,
      });
      const body = await res.text().catch(() => '');
      return { ok: res.status >= 200 && res.status < 300, detail: tail(`HTTP ${res.status}${body.trim() ? `: ${body}` : ''}`) };
    } catch (err) {
      const e = err as Error;
      return { ok: false, detail: tail(s.aborted ? `no answer within ${ms} ms` : `${e.message}${e.cause ? ` (${(e.cause as Error).message})` : ''}`) };
    }
  }
  return new Promise<GateResult>((resolve) => {
    const child = spawn('sh', ['-c', gate], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        FRAISIER_GATE: name,
        FRAISIER_FRAISE: ctx.fraise,
        FRAISIER_ENVIRONMENT: ctx.environment,
        FRAISIER_VERSION: ctx.version,
        FRAISIER_STEP: String(ctx.step),
        FRAISIER_WEIGHT: ctx.weight === null ? '' : String(ctx.weight),
      },
      detached: true,
    });
    let out = '';
    const add = (b: Buffer) => {
      out += b.toString();
      if (out.length > 20_000) out = out.slice(-10_000);
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    let timedOut = false;
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, ms);
    signal?.addEventListener('abort', kill, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: tail(err.message) });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', kill);
      if (timedOut) resolve({ ok: false, detail: tail(`timed out after ${ms} ms${out.trim() ? `: ${out}` : ''}`) });
      else resolve({ ok: code === 0, detail: tail(`exit ${code ?? 'signal'}${out.trim() ? `: ${out}` : ''}`) });
    });
  });
}
