import type { ServerResponse } from 'node:http';
import { CvoptError, type JobEvent, type JobService, type JobState } from '@cvopt/core';

export interface SseOptions {
  /** The client's `Last-Event-ID` header (or `?after=`): events after it are sent, so a reconnect resumes. */
  lastEventId?: string | string[] | undefined;
  /** A comment line this often keeps proxies from closing an idle stream, ms (default 15 000). */
  keepAliveMs?: number;
}

const TERMINAL: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

/** One event in the text/event-stream format; the id is the job's event seq. */
export function formatSseEvent(e: JobEvent): string {
  return `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
}

/** Parse Last-Event-ID: a non-negative integer, else INVALID_ARGUMENT naming the header. */
export function parseLastEventId(v: string | string[] | undefined): number {
  const raw = Array.isArray(v) ? v[0] : v;
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new CvoptError('INVALID_ARGUMENT', `Last-Event-ID must be a non-negative integer (an event seq), got "${raw}"`, { where: { field: 'Last-Event-ID' } });
  }
  return n;
}

/**
 * Stream a job's events to a Node `ServerResponse` as Server-Sent Events (any framework that exposes the raw
 * response can mount it: Fastify's `reply.raw` after `reply.hijack()`). Resumes after Last-Event-ID, ends the
 * stream after the job's final state event, and stops when the client goes away. Resolves when the stream ends.
 * Throws NOT_FOUND (before writing anything) when the job does not exist.
 */
export async function streamJobEvents(service: JobService, jobId: string, res: ServerResponse, opts: SseOptions = {}): Promise<void> {
  const after = parseLastEventId(opts.lastEventId);
  const job = await service.get(jobId);
  if (!job) throw new CvoptError('NOT_FOUND', `no job ${jobId}`, { where: { field: 'id' } });
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(': cvopt job events\n\n');
  // A finished job whose events the client already has: nothing will follow, so end now.
  if (TERMINAL.includes(job.state) && (await service.events(jobId, after)).length === 0) {
    res.end();
    return;
  }
  await new Promise<void>((resolve) => {
    let ended = false;
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), opts.keepAliveMs ?? 15_000);
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(keepAlive);
      unsubscribe();
      if (!res.writableEnded) res.end();
      resolve();
    };
    const unsubscribe: () => void = service.subscribe(jobId, after, (e) => {
      if (ended) return;
      res.write(formatSseEvent(e));
      if (e.type === 'state' && TERMINAL.includes((e.data as { state: JobState }).state)) queueMicrotask(end);
    });
    res.on('close', end);
  });
}
