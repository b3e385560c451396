import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseRuntimeConfig, startServer } from '../src/index.js';
import { fixtureModels } from './helpers.js';

const MAIN = new URL('../dist/main.js', import.meta.url).pathname;

/** Issue 13 item 8: binding every interface without keys must be a decision, not an accident. */
describe('--host 0.0.0.0 without keys', () => {
  it('refuses to start unless auth.enabled is explicitly false, naming the fix', () => {
    const r = spawnSync(process.execPath, [MAIN, fixtureModels().detStatic], { env: { ...process.env, CVOPT_HOST: '0.0.0.0', CVOPT_PORT: '0' }, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/INVALID_CONFIG|no API keys/);
    expect(r.stderr).toMatch(/auth.enabled: false/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(() => parseRuntimeConfig({ host: '::' })).toThrow(/no API keys/);
    expect(parseRuntimeConfig({ host: '0.0.0.0', auth: { enabled: false } }).host).toBe('0.0.0.0');
    expect(parseRuntimeConfig({ host: '0.0.0.0', auth: { keys: [{ name: 'a', key: 'admin-key-0123456789', role: 'admin' }] } }).host).toBe('0.0.0.0');
    expect(parseRuntimeConfig({ host: '127.0.0.2' }).host).toBe('127.0.0.2');
  });

  it('with auth.enabled false, reports the address really bound and serves', async () => {
    const s = await startServer({ target: fixtureModels().detStatic, overrides: { host: '0.0.0.0', port: 0, auth: { enabled: false } } });
    try {
      expect(s.listening).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
      expect(s.listening.split(':')[2]).not.toBe('0');
      expect(s.url).toBe(s.listening.replace('0.0.0.0', '127.0.0.1'));
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    } finally {
      await s.shutdown();
    }
  });
});
