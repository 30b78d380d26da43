import { redact } from './secret.js';

/**
 * The one error type of Fraisier. Every failure a user can meet carries a stable `code`, and where it
 * applies the deployment `step`, the `target`, the config `file`/`key`, and a `hint` saying what to do.
 * The CLI prints it as one clear line; `--json` carries the same fields. Its message and hint pass
 * through {@link redact} when it is made, so a secret a command echoed never travels further.
 */
export type ErrorCode =
  | 'E_CONFIG' // a config file or deploy.ts option is wrong
  | 'E_USAGE' // a CLI argument is wrong
  | 'E_VERSION' // a version/ref is malformed or cannot be resolved
  | 'E_LOCKED' // another deployment holds the lock
  | 'E_UNREACHABLE' // a host cannot be reached
  | 'E_HOST_KEY' // a host key is unknown or has changed
  | 'E_PREFLIGHT' // a target failed its preflight check
  | 'E_COMMAND' // a command exited non-zero
  | 'E_HEALTH' // a health check failed
  | 'E_ROLLBACK' // a rollback could not complete
  | 'E_ABORTED' // interrupted (Ctrl-C)
  | 'E_NOT_FOUND' // a release, fraise or environment does not exist
  | 'E_STATE' // the state store cannot be opened (bad or unreachable database URL)
  | 'E_WINDOW'; // outside the environment's deploy windows, or inside a freeze (exit 2; --force overrides)

export interface ErrorDetails {
  step?: string;
  target?: string;
  file?: string;
  key?: string;
  hint?: string;
  cause?: unknown;
}

export class FraisierError extends Error {
  readonly code: ErrorCode;
  readonly step?: string;
  readonly target?: string;
  readonly file?: string;
  readonly key?: string;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(redact(message), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'FraisierError';
    this.code = code;
    if (details.step !== undefined) this.step = details.step;
    if (details.target !== undefined) this.target = details.target;
    if (details.file !== undefined) this.file = details.file;
    if (details.key !== undefined) this.key = details.key;
    if (details.hint !== undefined) this.hint = redact(details.hint);
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      step: this.step,
      target: this.target,
      file: this.file,
      key: this.key,
      hint: this.hint,
    };
  }
}

/**
 * Several targets failed independently (e.g. `open`: h2 unreachable, h3's preflight failed). The message
 * joins them; `byTarget` keeps each target's own error, so a caller that can go on with the other
 * targets (`status`) reports every host with its own result instead of blaming all for one.
 */
export class TargetErrors extends FraisierError {
  /** Each failed target's own error, by target name. */
  readonly byTarget: ReadonlyMap<string, FraisierError>;
  constructor(errors: ReadonlyMap<string, FraisierError>, details: ErrorDetails = {}) {
    const list = [...errors.values()];
    const first = list[0]!;
    super(first.code, list.length === 1 ? first.message : list.map((e) => e.message).join('; '), {
      ...(first.target ? { target: first.target } : {}),
      ...(first.hint ? { hint: first.hint } : {}),
      ...details,
    });
    this.byTarget = errors;
  }
}

/**
 * Thrown by a `postDeploy` tap to fail a deployment that had succeeded so far (any other error there is
 * only a warning). With `rollback: true` every touched target is rolled back (when the rollback policy
 * allows) and the `rollback` hook fires; with `rollback: false` the deployment is marked failed and the
 * targets stay on the new release. `failed` fires in both cases.
 */
export class PostDeployError extends FraisierError {
  /** Roll the touched targets back. */
  readonly rollback: boolean;
  constructor(message: string, options: { rollback: boolean; step?: string; hint?: string; cause?: unknown }) {
    super('E_COMMAND', message, {
      step: options.step ?? 'postDeploy',
      ...(options.hint ? { hint: options.hint } : {}),
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.rollback = options.rollback;
  }
}

/** Wraps anything thrown into a FraisierError, keeping an existing one as it is. */
export function asFraisierError(err: unknown, code: ErrorCode = 'E_COMMAND', details: ErrorDetails = {}): FraisierError {
  if (err instanceof FraisierError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new FraisierError(code, message, { ...details, cause: err });
}

/** The one-line form the CLI prints: `error[E_HEALTH] h2: health check failed ... (hint: ...)`, redacted. */
export function formatError(err: unknown): string {
  return redact(formatUnredacted(err));
}

function formatUnredacted(err: unknown): string {
  if (err instanceof FraisierError) {
    const where = [err.file, err.key].filter(Boolean).join(': ');
    const parts = [`error[${err.code}]`];
    if (err.target) parts.push(`${err.target}:`);
    if (where && !err.message.includes(where)) parts.push(`${where}:`);
    parts.push(err.message);
    let line = parts.join(' ');
    if (err.hint) line += `\n  hint: ${err.hint}`;
    return line;
  }
  return `error: ${err instanceof Error ? err.message : String(err)}`;
}

/**
 * `p`, or a rejection with `E_ABORTED` (the signal's reason) as soon as `signal` aborts, whichever comes
 * first. `p` is expected to stop on the same signal, so its own later rejection is not reported as unhandled.
 */
export function abortable<T>(signal: AbortSignal, p: Promise<T>): Promise<T> {
  if (signal.aborted) {
    p.catch(() => {});
    return Promise.reject(asFraisierError(signal.reason, 'E_ABORTED'));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      p.catch(() => {});
      reject(asFraisierError(signal.reason, 'E_ABORTED'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
