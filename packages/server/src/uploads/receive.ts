import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { CvoptError } from '@cvopt/core';

/**
 * Stream a request body to `dest`, counting bytes as they arrive: past `maxBytes` the transfer stops at once,
 * the partial file is removed and PAYLOAD_TOO_LARGE is thrown (the error handler closes the connection after
 * the 413, so the rest is never read). A Content-Length over the limit is refused before the first byte.
 */
export async function receiveToFile(body: Readable, dest: string, maxBytes: number, declaredLength?: string): Promise<{ bytes: number; sha256: string }> {
  const tooLarge = () =>
    new CvoptError('PAYLOAD_TOO_LARGE', `the upload is larger than the limit of ${maxBytes} bytes`, { hint: 'upload a smaller file or raise the server limit' });
  if (declaredLength !== undefined && Number(declaredLength) > maxBytes) throw tooLarge();
  const out = await open(dest, 'wx', 0o600);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (e: unknown) => {
        body.pause();
        body.removeAllListeners('data');
        reject(e);
      };
      body.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > maxBytes) return fail(tooLarge());
        hash.update(chunk);
        body.pause();
        out.write(chunk).then(() => body.resume(), fail);
      });
      body.once('end', resolve);
      body.once('error', fail);
      body.once('aborted', () => fail(new Error('the client aborted the upload')));
    });
  } catch (e) {
    await out.close();
    await rm(dest, { force: true });
    if (e instanceof CvoptError) throw e;
    throw new CvoptError('INVALID_ARGUMENT', `the upload was interrupted: ${(e as Error).message}`, { hint: 'retry the upload' });
  }
  await out.close();
  if (bytes === 0) {
    await rm(dest, { force: true });
    throw new CvoptError('INVALID_ARGUMENT', 'the upload is empty', { hint: 'send the file as the request body (curl --data-binary @file)' });
  }
  return { bytes, sha256: hash.digest('hex') };
}
