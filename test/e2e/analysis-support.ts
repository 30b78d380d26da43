/** Shared set-up of the analysis e2e tests (analysis-probe, analysis-prometheus, analysis-nginx). */
import * as assert from 'uvu/assert';
import { createAnalysis } from '../../core/analysis/index.js';
import type { AnalysisContext, AnalysisOptions } from '../../core/analysis/types.js';
import type { Target } from '../../core/types.js';
import { hostExec, type LabEnv } from '../lab/lab.js';

/**
 * An analysis context for app/production with one canary and one stable host, whose versions come from
 * `releases`; log lines go to `lines`. `executor` defaults to one that throws `noExecutor` (for the
 * sources that never use the hosts' connections).
 */
export function analysisContext(
  releases: Record<string, string>,
  hosts: { canary: string; stable: string },
  lines: string[],
  options: { executor?: AnalysisContext['executor']; noExecutor?: string; extra?: Partial<AnalysisContext> } = {},
): AnalysisContext {
  const log = (m: string) => lines.push(m);
  return {
    fraise: 'app',
    environment: 'production',
    log: { info: log, warn: log, error: log },
    signal: new AbortController().signal,
    now: () => Date.now(),
    executor:
      options.executor ??
      ((_t: Target) => {
        throw new Error(options.noExecutor ?? 'this source does not use the hosts');
      }),
    traffic: null,
    canary: [{ name: hosts.canary, kind: 'ssh' }],
    stable: [{ name: hosts.stable, kind: 'ssh' }],
    canaryVersion: releases[hosts.canary]!,
    stableVersion: releases[hosts.stable]!,
    ...options.extra,
  };
}

/** Runs an analysis until its first verdict (or `ms`), then stops it; returns the status and the log. */
export async function analyse(options: AnalysisOptions, context: (lines: string[]) => AnalysisContext, ms = 60_000) {
  const lines: string[] = [];
  const a = createAnalysis(options, context(lines));
  try {
    await a.start();
    return { status: await a.run(ms), lines };
  } finally {
    await a.stop();
  }
}

/** Puts each host on its release (a clone checked out at the tag, `current` switched, app restarted) and waits for /health. */
export async function putReleases(env: LabEnv, releases: Record<string, string>): Promise<void> {
  await Promise.all(
    Object.entries(releases).map(async ([host, v]) => {
      const r = await hostExec(
        env,
        host,
        `set -e; git clone -q ${env.appRepo} /srv/app/releases/${v}; git -C /srv/app/releases/${v} checkout -q ${v}; ln -sfn releases/${v} /srv/app/current; supervisorctl restart app >/dev/null; for i in $(seq 100); do curl -sf http://127.0.0.1:8000/health >/dev/null && exit 0; sleep 0.2; done; exit 1`,
        120_000,
      );
      assert.is(r.code, 0, `${host}: ${r.stderr}`);
    }),
  );
}
