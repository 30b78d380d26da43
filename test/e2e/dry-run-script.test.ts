/** The command × flag table (test/e2e/dry-run-table.ts) through `npx tsx deploy.ts <env> <command>`. */
import { table } from './dry-run-table.js';

table('script');
