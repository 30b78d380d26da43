import { Duplex } from 'node:stream';
import { render, type Command } from './command.js';
import type { ExecResult, Executor, RunOptions } from './executor.js';
import { commandError } from './ssh.js';

/** A canned reply for commands whose rendered text matches `match`. */
export interface Reply {
  match: RegExp | ((text: string) => boolean);
  result?: Partial<ExecResult> | ((text: string) => Partial<ExecResult>);
  /** Only answer this many times (then the next matching reply is used). */
  times?: number;
}

/**
 * An executor for unit tests: records every command (as redacted text and as data) and answers from a
 * list of replies; anything unmatched succeeds with empty output. Many targets may share one log.
 */
export class RecordingExecutor implements Executor {
  readonly name: string;
  readonly stats = { commands: 0, busyMs: 0 };
  readonly log: { target: string; text: string; command: Command }[];
  readonly replies: Reply[];
  /** TCP endpoints that accept connections in `connectTcp` (as "host:port"); every other one is refused. */
  readonly openPorts = new Set<string>();
  closed = false;

  constructor(name: string, options: { replies?: Reply[]; log?: RecordingExecutor['log'] } = {}) {
    this.name = name;
    this.replies = options.replies ?? [];
    this.log = options.log ?? [];
  }

  /** The rendered commands this executor ran. */
  get commands(): string[] {
    return this.log.filter((l) => l.target === this.name).map((l) => l.text);
  }

  on(match: Reply['match'], result: Reply['result'], times?: number): this {
    this.replies.push({ match, result, ...(times !== undefined ? { times } : {}) });
    return this;
  }

  async run(cmd: Command, options: RunOptions = {}): Promise<ExecResult> {
    const text = render(cmd);
    this.log.push({ target: this.name, text, command: cmd });
    this.stats.commands++;
    let partial: Partial<ExecResult> = {};
    for (const r of this.replies) {
      const hit = typeof r.match === 'function' ? r.match(text) : r.match.test(text);
      if (!hit || r.times === 0) continue;
      if (r.times !== undefined) r.times--;
      partial = typeof r.result === 'function' ? r.result(text) : (r.result ?? {});
      break;
    }
    const result: ExecResult = { code: 0, stdout: '', stderr: '', durationMs: 0, ...partial };
    if ((options.check ?? true) && result.code !== 0) throw commandError(this.name, cmd, result);
    return result;
  }

  async connectTcp(host: string, port: number): Promise<Duplex> {
    if (!this.openPorts.has(`${host}:${port}`)) throw new Error('Connection refused');
    return new Duplex({
      read() {},
      write(_c, _e, cb) {
        cb();
      },
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * Prints every command instead of running it (`--dry-run`): the exact plan, secrets redacted. Commands
 * that only read state still run against `reader` when one is given, so the plan names real versions.
 */
export class DryRunExecutor implements Executor {
  readonly name: string;
  readonly stats = { commands: 0, busyMs: 0 };
  readonly planned: string[] = [];

  constructor(
    name: string,
    private readonly print: (line: string) => void,
    private readonly reader?: Executor,
  ) {
    this.name = name;
  }

  async run(cmd: Command, options: RunOptions = {}): Promise<ExecResult> {
    if (this.reader && cmd.readOnly) return this.reader.run(cmd, options);
    const text = render(cmd);
    this.planned.push(text);
    this.print(`[dry-run] ${this.name}: ${text}`);
    return { code: 0, stdout: '', stderr: '', durationMs: 0 };
  }

  connectTcp(host: string, port: number): Promise<Duplex> {
    if (this.reader) return this.reader.connectTcp(host, port);
    return Promise.reject(new Error('dry run: no connection'));
  }

  async close(): Promise<void> {
    await this.reader?.close();
  }
}
