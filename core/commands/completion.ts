import type { StandaloneCommand } from './types.js';
import { stringArg } from './types.js';

/**
 * `fraisier completion [--shell bash|zsh|fish]`: prints yargs' shell completion script for `fraisier`
 * (commands, options, and the choices of options such as `--phase`). Source it from the shell's rc file:
 * `fraisier completion >> ~/.bashrc`. The shell then asks `fraisier --get-yargs-completions ...`.
 */
export const completion: StandaloneCommand = {
  name: 'completion',
  describe: 'print a shell completion script (fraisier completion >> ~/.bashrc)',
  scope: 'standalone',
  frontEnds: ['fraisier'],
  changesHosts: false,
  usesTargets: false,
  options: {
    shell: { type: 'string', describe: 'the shell to complete in', choices: ['bash', 'zsh', 'fish'], defaultDescription: 'from $SHELL, else bash' },
  },
  async run(args, io) {
    const { default: yargs } = await import('yargs');
    const shell = stringArg(args, 'shell');
    const saved = process.env.SHELL;
    // yargs picks the template from $SHELL when the completion is set up
    if (shell !== undefined) process.env.SHELL = `/bin/${shell}`;
    // yargs writes the script with console.log: sent to io.out instead
    const log = console.log;
    console.log = (...parts: unknown[]) => io.out(`${parts.map(String).join(' ')}\n`);
    try {
      yargs([]).scriptName('fraisier').completion('completion', false).showCompletionScript();
    } finally {
      console.log = log;
      if (shell !== undefined) {
        if (saved === undefined) delete process.env.SHELL;
        else process.env.SHELL = saved;
      }
    }
    return 0;
  },
};
