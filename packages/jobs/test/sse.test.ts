// Server-Sent Events over real HTTP: a client that disconnects and reconnects with Last-Event-ID gets every event
// exactly once, and the stream ends after the job's final state.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCvoptError } from '@cvopt/core';
import { createJobService, runWorker, spawnJobProcess, streamJobEvents, type RunningWorker, type SqlJobService } from '../src/index.js';
import { testBackend, type TestBackend } from './backends.js';
import { testHandlers } from './fixtures/handlers.mjs';
import { readRuns } from './fixtures/runs.mjs';

interface Sse {
  id: number;
  event: string;
  data: { seq: number; type: string; data: { state?: string } };
}

/** Read SSE frames until `stopAfter` frames arrived (then disconnect) or the server ends the stream. */
async function readStream(url: string, headers: Record<string, string>, stopAfter = Infinity): Promise<{ frames: Sse[]; ended: boolean; status: number }> {
  const ac = new AbortController();
  const res = await fetch(url, { headers, signal: ac.signal });
  const frames: Sse[] = [];
  if (!res.body) return { frames, ended: true, status: res.status };
  const decoder = new TextDecoder();
  let buf = '';
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { frames, ended: true, status: res.status };
    buf += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      if (block.startsWith(':')) continue;
      const field = (k: string) => block.split('\n').find((l) => l.startsWith(`${k}: `))?.slice(k.length + 2) ?? '';
      frames.push({ id: Number(field('id')), event: field('event'), data: JSON.parse(field('data')) });
      if (frames.length >= stopAfter) {
        ac.abort();
        return { frames, ended: false, status: res.status };
      }
    }
  }
}

describe('streamJobEvents', () => {
  let tb: TestBackend;
  let service: SqlJobService;
  let worker: RunningWorker;
  let server: Server;
  let base = '';

  beforeAll(async () => {
    tb = testBackend('sqlite');
    const backend = await tb.open();
    const handlers = testHandlers({ spawnJobProcess, readRuns });
    service = createJobService(backend, { kinds: handlers });
    worker = runWorker({ backend, handlers, queues: ['training'], progressMinMs: 0, onLog: () => undefined });
    server = createServer((req, res) => {
      const id = (req.url ?? '').split('/')[2] ?? '';
      streamJobEvents(service, id, res, { lastEventId: req.headers['last-event-id'], keepAliveMs: 100 }).catch((e: unknown) => {
        res.writeHead(isCvoptError(e) ? e.httpStatus : 500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: isCvoptError(e) ? e.code : 'INTERNAL' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await worker.close();
    await new Promise((r) => server.close(r));
    await tb.cleanup();
  });

  it('resumes after Last-Event-ID with no event lost or repeated, and ends after the final state', async () => {
    const job = await service.submit('sleep', { tag: 'sse', ms: 600 });
    const first = await readStream(`${base}/jobs/${job.id}/events`, {}, 2);
    expect(first.status).toBe(200);
    expect(first.frames.map((f) => f.id)).toEqual([1, 2]);
    const rest = await readStream(`${base}/jobs/${job.id}/events`, { 'last-event-id': String(first.frames.at(-1)?.id) });
    expect(rest.ended).toBe(true);
    const all = [...first.frames, ...rest.frames];
    expect(all.map((f) => f.id)).toEqual(all.map((_, i) => i + 1));
    expect(all.map((f) => f.event)).toEqual(['state', 'state', 'progress', 'progress', 'log', 'result', 'state']);
    expect(all.at(-1)?.data.data.state).toBe('succeeded');
    // A finished job streamed from its last event ends at once.
    const none = await readStream(`${base}/jobs/${job.id}/events`, { 'last-event-id': String(all.length) });
    expect(none).toMatchObject({ frames: [], ended: true, status: 200 });
  });

  it('answers an unknown job and a malformed Last-Event-ID with typed errors', async () => {
    const missing = await fetch(`${base}/jobs/00000000-0000-0000-0000-000000000000/events`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ code: 'NOT_FOUND' });
    const job = await service.submit('sleep', { tag: 'bad-id', ms: 1 });
    const bad = await fetch(`${base}/jobs/${job.id}/events`, { headers: { 'last-event-id': 'abc' } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ code: 'INVALID_ARGUMENT' });
  });
});
