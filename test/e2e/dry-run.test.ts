/** The command × flag table (test/e2e/dry-run-table.ts) through the `fraisier` command over fraises.yaml. */
import { table } from './dry-run-table.js';

table('fraisier');
