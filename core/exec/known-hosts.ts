import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** One key for one host, as found in a known_hosts file. */
export interface KnownKey {
  type: string;
  key: string; // base64 of the public key blob
  file: string;
  line: number;
}

function matchPattern(pattern: string, name: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
    'i',
  );
  return re.test(name);
}

function hostMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return h === hash;
  }
  let matched = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pat = negated ? raw.slice(1) : raw;
    if (matchPattern(pat, name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/**
 * Reads OpenSSH known_hosts files (plain and hashed entries, `[host]:port` forms, wildcard patterns,
 * `@revoked` markers) and answers which keys a host may present.
 */
export class KnownHosts {
  readonly files: string[];
  private readonly lines: { marker: string | null; hosts: string; type: string; key: string; file: string; line: number }[] = [];

  constructor(files: string[]) {
    this.files = files;
    for (const file of files) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      text.split('\n').forEach((rawLine, i) => {
        const line = rawLine.trim();
        if (!line || line.startsWith('#')) return;
        const parts = line.split(/\s+/);
        let marker: string | null = null;
        if (parts[0]!.startsWith('@')) marker = parts.shift()!;
        const [hosts, type, key] = parts;
        if (!hosts || !type || !key) return;
        this.lines.push({ marker, hosts, type, key, file, line: i + 1 });
      });
    }
  }

  /** The keys known for `hostname` on `port` (`[host]:port` when port is not 22). Revoked keys are left out. */
  lookup(hostname: string, port = 22): { keys: KnownKey[]; revoked: string[] } {
    const name = port === 22 ? hostname : `[${hostname}]:${port}`;
    const keys: KnownKey[] = [];
    const revoked: string[] = [];
    for (const l of this.lines) {
      if (l.marker === '@cert-authority') continue;
      if (!hostMatches(l.hosts, name)) continue;
      if (l.marker === '@revoked') revoked.push(l.key);
      else keys.push({ type: l.type, key: l.key, file: l.file, line: l.line });
    }
    return { keys: keys.filter((k) => !revoked.includes(k.key)), revoked };
  }
}
