import { connect } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * A TCP connection from this machine, for executors whose targets are reached directly (this machine, a
 * Coolify application's public address). Rejects with `Connection refused` when nothing listens, the
 * reason health checks print.
 */
export function connectTcp(host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true }, () => {
      s.off('error', onError);
      resolve(s);
    });
    const onError = (e: NodeJS.ErrnoException) => reject(new Error(e.code === 'ECONNREFUSED' ? 'Connection refused' : e.message));
    s.once('error', onError);
  });
}
