import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readRegularFile, regularFileSize } from './files.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-files-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('readRegularFile', () => {
  it('refuses a FIFO at once, a device, a folder and an oversized file, and reads a real one', () => {
    execFileSync('mkfifo', [join(tmp, 'fifo')]);
    symlinkSync('/dev/zero', join(tmp, 'zero'));
    writeFileSync(join(tmp, 'big'), '');
    truncateSync(join(tmp, 'big'), 1025);
    writeFileSync(join(tmp, 'ok'), 'hello');
    symlinkSync(join(tmp, 'ok'), join(tmp, 'link'));
    expect(readRegularFile(join(tmp, 'fifo'), 1024)).toMatchObject({ ok: false, reason: 'not-regular', message: expect.stringContaining('FIFO') });
    expect(readRegularFile(join(tmp, 'zero'), 1024)).toMatchObject({ ok: false, reason: 'not-regular', message: expect.stringContaining('device') });
    expect(readRegularFile(tmp, 1024)).toMatchObject({ ok: false, reason: 'not-regular' });
    expect(readRegularFile(join(tmp, 'big'), 1024)).toMatchObject({ ok: false, reason: 'too-large' });
    expect(readRegularFile(join(tmp, 'none'), 1024)).toMatchObject({ ok: false, reason: 'missing' });
    const ok = readRegularFile(join(tmp, 'ok'), 1024);
    expect(ok.ok && ok.bytes.toString()).toBe('hello');
    // a symlink is followed unless the caller already resolved the real path and asks for none
    expect(regularFileSize(join(tmp, 'link'), 1024)).toEqual({ ok: true, size: 5 });
    expect(regularFileSize(join(tmp, 'link'), 1024, { follow: false })).toMatchObject({ ok: false, reason: 'not-regular' });
  });
});
