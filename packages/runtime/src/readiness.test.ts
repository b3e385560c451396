import { describe, expect, it } from 'vitest';
import { parseRuntimeConfig, providerOf } from './config.js';
import { Readiness } from './readiness.js';

describe('readiness state machine', () => {
  it('walks loading → warming → ready ⇄ reloading → draining → stopped, and takes work only when ready or reloading', () => {
    const r = new Readiness();
    const seen: string[] = [];
    r.onChange((s) => seen.push(s));
    expect(r.takesWork).toBe(false);
    expect(r.refusal()?.code).toBe('NOT_READY');
    r.to('warming');
    r.to('ready');
    expect(r.takesWork).toBe(true);
    expect(r.refusal()).toBeUndefined();
    r.to('reloading');
    expect(r.takesWork).toBe(true);
    r.to('ready');
    r.to('failed', 'engine worker exited');
    expect(r.takesWork).toBe(false);
    expect(r.reason).toBe('engine worker exited');
    r.to('loading');
    r.to('warming');
    r.to('ready');
    r.to('draining');
    expect(r.refusal()?.code).toBe('SHUTTING_DOWN');
    r.to('draining'); // a second drain is a no-op
    r.to('ready'); // a late reload finishing during a drain does not revive the service
    expect(r.state).toBe('draining');
    r.to('stopped');
    expect(seen).toEqual(['warming', 'ready', 'reloading', 'ready', 'failed', 'loading', 'warming', 'ready', 'draining', 'stopped']);
  });

  it('refuses an illegal move as an internal error', () => {
    const r = new Readiness();
    expect(() => r.to('reloading')).toThrow(/cannot go from loading to reloading/);
  });
});

describe('runtime config engine ids', () => {
  it('takes a servable engine id from core and derives the provider from its spec', () => {
    expect(parseRuntimeConfig({}).engine).toBe('ort-cpu');
    const c = parseRuntimeConfig({ engine: 'ort-cpu-int8' });
    expect(providerOf(c.engine)).toBe('cpu');
    expect(providerOf(parseRuntimeConfig({ engine: 'ort-cuda' }).engine)).toBe('cuda');
    expect(() => parseRuntimeConfig({ engine: 'pytorch' })).toThrow(/engine/);
  });

  it('still accepts the deprecated provider key', () => {
    expect(parseRuntimeConfig({ provider: 'cuda' }).engine).toBe('ort-cuda');
    expect(parseRuntimeConfig({ provider: 'cpu' }).engine).toBe('ort-cpu');
  });
});
