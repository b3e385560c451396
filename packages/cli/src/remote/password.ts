import { CvoptError } from '@cvopt/core';

/** A password from stdin (--password-stdin), CVOPT_PASSWORD, or a hidden prompt on a terminal — never a flag. */
export async function readPassword(opts: Record<string, unknown>, prompt = 'password: '): Promise<string> {
  if (opts.passwordStdin) {
    let s = '';
    for await (const chunk of process.stdin) s += String(chunk);
    return s.replace(/\r?\n$/, '');
  }
  if (process.env.CVOPT_PASSWORD) return process.env.CVOPT_PASSWORD;
  if (!process.stdin.isTTY) {
    throw new CvoptError('INVALID_ARGUMENT', 'no password given', { hint: 'pipe it with --password-stdin, or set CVOPT_PASSWORD' });
  }
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done();
          return resolve(value);
        }
        if (ch === '\u0003') {
          done();
          return reject(new CvoptError('CANCELLED', 'cancelled'));
        }
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}
