import net from 'node:net';

export interface RawAnswer {
  status: number;
  headers: string;
  body: string;
  /** Milliseconds from the connection to the status line (or to the close when none came). */
  ms: number;
  /** The server closed or reset the connection. */
  closed: boolean;
}

/**
 * A hand-driven HTTP/1.1 request over a raw socket: the headers at once, then the body as the caller feeds it
 * (`feed(socket)`), so a test can trickle, stall or abandon an upload the way an attacker would.
 */
export function rawRequest(url: string, head: string, feed: (s: net.Socket) => void | Promise<void>, timeoutMs = 15_000): Promise<RawAnswer> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect(Number(u.port), u.hostname);
    let data = '';
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const [headText = '', body = ''] = data.split('\r\n\r\n', 2);
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(headText)?.[1] ?? 0);
      resolve({ status, headers: headText, body, ms: performance.now() - t0, closed });
      s.destroy();
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('data', (d) => {
      data += d.toString('latin1');
      const [h, b] = data.split('\r\n\r\n', 2);
      if (h && b !== undefined) {
        const len = Number(/content-length: (\d+)/i.exec(h)?.[1] ?? -1);
        if (len >= 0 && Buffer.byteLength(b, 'latin1') >= len && !/^HTTP\/1\.1 100/.test(h)) finish(false);
      }
    });
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    s.on('connect', () => {
      s.write(head);
      void Promise.resolve(feed(s)).catch(() => undefined);
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Write `total` bytes, `chunk` at a time every `everyMs`, until done or the socket is gone. */
export async function trickle(s: net.Socket, total: number, chunk: number, everyMs: number): Promise<void> {
  for (let sent = 0; sent < total && !s.destroyed; sent += chunk) {
    s.write(Buffer.alloc(Math.min(chunk, total - sent), 0x41));
    await sleep(everyMs);
  }
}
