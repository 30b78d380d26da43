/**
 * The package's modules in the order a deploy needs them, for the `fraisier` command (core/cli.ts),
 * which imports them one step at a time and yields to the event loop between steps: the state store
 * (for the lock), the deployer, the bare_metal provider and the strategies, then the rest (index.ts,
 * whose built-ins register their implementations). An SSH handshake started early
 * (core/connect-early.ts) then progresses while the package loads. Not part of the public API.
 */
export const PACKAGE_STEPS: readonly (() => Promise<unknown>)[] = [
  () => import('./core/state/store.js'),
  () => import('./core/deployer.js'),
  () => import('./providers/bare-metal.js'),
  () => import('./strategies/rolling.js'),
  () => import('./strategies/canary.js'),
  () => import('./index.js'),
];
