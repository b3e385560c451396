import { randomUUID } from 'node:crypto';
import { createWriteStream, readdirSync, rmSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline as streamPipeline } from 'node:stream/promises';
import type { FastifyInstance } from 'fastify';
import { CvoptError } from '@cvopt/core';
import { errorBody, httpErrorToCvopt } from '../errors.js';
import { VIDEO_TYPES, mediaType, type RouteContext } from '../http/context.js';
import { runVideo } from '../pipeline.js';
import * as S from '../schemas.js';

/** POST /v1/predict/video: the upload streams to a temp folder, answers stream back as NDJSON, one line per frame. */
export function videoRoutes(app: FastifyInstance, { config, host, log, memory }: RouteContext): void {
  const tempRoot = config.video.tempDir ?? tmpdir();
  const swept = sweepStaleUploads(tempRoot);
  if (swept > 0) log.info({ swept, tempRoot }, 'removed video upload folders left by processes that are gone');
  app.post('/v1/predict/video', { schema: S.predictVideo, config: { permission: 'predict', admits: true } }, async (req, reply) => {
    const type = mediaType(req);
    if (!VIDEO_TYPES.includes(type)) {
      throw new CvoptError('UNSUPPORTED_MEDIA_TYPE', `content type "${type || '(none)'}" is not a video type for /v1/predict/video`, {
        where: { field: 'content-type' },
        hint: `send the file raw with one of: ${VIDEO_TYPES.join(', ')}`,
      });
    }
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > config.video.maxBytes) throw tooBig(config.video.maxBytes);
    const dir = await mkdtemp(join(tempRoot, `${DIR_PREFIX}${process.pid}-`));
    let frames: AsyncGenerator<Record<string, unknown>> | undefined;
    try {
      const file = join(dir, `upload-${randomUUID()}`);
      await saveCapped(req.body as Readable, file, config.video.maxBytes);
      const model = host.current;
      const signal = req.abort!.signal;
      const track = (req.query as { track?: boolean } | undefined)?.track === true;
      frames = runVideo(file, model, host, config, { signal, ticket: req.ticket!, deadlineMs: config.sloMs, log, onSpawn: (pid) => memory.track(pid), track });
      const first = await frames.next();
      // Errors before the first frame (corrupt, too long) still get a proper status code and JSON body.
      reply.type('application/x-ndjson');
      reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' });
      if (!first.done) reply.raw.write(`${JSON.stringify(first.value)}\n`);
      try {
        for (let f = await frames.next(); !f.done; f = await frames.next()) {
          if (!reply.raw.write(`${JSON.stringify(f.value)}\n`)) await drained(reply.raw, signal, config.video.stallTimeoutMs);
        }
        reply.raw.end(`${JSON.stringify({ done: true })}\n`);
      } catch (e) {
        // Headers are gone: the stream's last line carries the error instead (a client that left gets nothing).
        if (e instanceof CvoptError && e.code === 'CANCELLED') {
          log.info({ url: req.url, reason: e.message }, 'video client went away');
          reply.raw.destroy();
        } else reply.raw.end(`${JSON.stringify(errorBody(httpErrorToCvopt(e)))}\n`);
      }
      return reply;
    } finally {
      await frames?.return(undefined); // stops ffmpeg if the loop left early
      await rm(dir, { recursive: true, force: true });
    }
  });
}

const DIR_PREFIX = 'cvopt-video-';

/**
 * Remove upload folders whose process is gone (a crash or kill skips the handlers' cleanup). Folders are named
 * cvopt-video-<pid>-…, so a folder of another live server on the same machine is left alone.
 */
export function sweepStaleUploads(root: string): number {
  let n = 0;
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return 0;
  }
  for (const name of names) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m || alive(Number(m[1]))) continue;
    rmSync(join(root, name), { recursive: true, force: true });
    n++;
  }
  return n;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Wait until the client takes more of the answer; a client gone or stalled past `stallMs` cancels the video. */
function drained(res: ServerResponse, signal: AbortSignal, stallMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancel = (why: string) => {
      cleanup();
      reject(new CvoptError('CANCELLED', why));
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => cancel('the client closed the connection');
    const onAbort = () => cancel('the client went away');
    const timer = setTimeout(() => cancel(`the client read nothing for ${stallMs} ms`), stallMs);
    const cleanup = () => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function tooBig(max: number): CvoptError {
  return new CvoptError('PAYLOAD_TOO_LARGE', `the video upload exceeds the limit of ${max} bytes`, { where: { field: 'body' }, hint: 'send a shorter clip, or raise video.maxBytes' });
}

/** Stream an upload to disk, failing as soon as it passes `max` bytes. */
async function saveCapped(body: Readable, file: string, max: number): Promise<void> {
  let n = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > max) cb(tooBig(max));
      else cb(null, chunk);
    },
  });
  await streamPipeline(body, counter, createWriteStream(file));
  if (n === 0) throw new CvoptError('VIDEO_INVALID', 'the video upload is empty', { where: { field: 'body' } });
}
