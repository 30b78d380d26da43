import { DeployApp, callerFile, dirOf, isMain, type DeployDefinition } from './app.js';
import { runScriptCli } from './cli.js';

/** {@link DeployDefinition} plus how the script behaves when run directly. */
export interface DefineDeployOptions<E extends string> extends DeployDefinition<E> {
  /**
   * When the file calling `defineDeploy` is the script node/tsx was started with
   * (`npx tsx deploy.ts production`), run the command line after the module has loaded. Importing the
   * file from other code never starts it. Default true; `FRAISIER_NO_AUTORUN=1` also turns it off.
   */
  autorun?: boolean;
}

/**
 * The typed entry point of a `deploy.ts` (Vite's `defineConfig`): returns a {@link DeployApp} with
 * `deploy`, `rollback`, `status`, `history`, `stats` and `unlock`, typed by environment name.
 *
 * ```ts
 * export default defineDeploy({
 *   name: 'api',
 *   environments: { production: { provider: bareMetal({...}), strategy: rolling({ batchSize: 2 }) } },
 * });
 * ```
 */
export function defineDeploy<const E extends string>(definition: DefineDeployOptions<E>): DeployApp<E> {
  const file = callerFile();
  const app = new DeployApp<E>(definition, dirOf(file));
  if (definition.autorun !== false && !process.env['FRAISIER_NO_AUTORUN'] && isMain(file)) {
    setImmediate(() => {
      runScriptCli(app as DeployApp, process.argv.slice(2)).then(
        (code) => process.exit(code),
        (err) => {
          process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
          process.exit(1);
        },
      );
    });
  }
  return app;
}
