import { redact } from './secret.js';

export type LogLevel = 'info' | 'warn' | 'error';

/** One line of deployment output. */
export interface LogEntry {
  at: number;
  level: LogLevel;
  target: string | null;
  message: string;
}

/**
 * Where deployment output goes. Every line passes through {@link redact} first, so no secret value
 * reaches a terminal, a log file or the history.
 */
export interface Logger {
  info(message: string, target?: string | null): void;
  warn(message: string, target?: string | null): void;
  error(message: string, target?: string | null): void;
}

export type LogSink = (entry: LogEntry) => void;

/** A logger that fans every (redacted) entry out to sinks. */
export class FanoutLogger implements Logger {
  readonly sinks: LogSink[];
  constructor(sinks: LogSink[] = []) {
    this.sinks = sinks;
  }
  private emit(level: LogLevel, message: string, target: string | null = null): void {
    const entry: LogEntry = { at: Date.now(), level, target, message: redact(message) };
    for (const sink of this.sinks) sink(entry);
  }
  info(message: string, target?: string | null): void {
    this.emit('info', message, target);
  }
  warn(message: string, target?: string | null): void {
    this.emit('warn', message, target);
  }
  error(message: string, target?: string | null): void {
    this.emit('error', message, target);
  }
}

/**
 * Writes entries as human lines: `[h1] Attempt 1: FAILED (Connection refused)`. Info goes to `stream`,
 * warnings and errors to `errors` (stderr by default).
 */
export function consoleSink(stream: NodeJS.WritableStream = process.stdout, errors: NodeJS.WritableStream = process.stderr): LogSink {
  return (e) => {
    const prefix = e.target ? `[${e.target}] ` : '';
    const level = e.level === 'info' ? '' : `${e.level}: `;
    (e.level === 'info' ? stream : errors).write(`${prefix}${level}${e.message}\n`);
  };
}

/** Collects entries in memory (tests, `--json`). */
export function memorySink(into: LogEntry[]): LogSink {
  return (e) => {
    into.push(e);
  };
}
