import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
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
export function videoRoutes(app: FastifyInstance, { config, host }: RouteContext): void {
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
    const dir = await mkdtemp(join(tmpdir(), 'cvopt-video-'));
    try {
      const file = join(dir, `upload-${randomUUID()}`);
      await saveCapped(req.body as Readable, file, config.video.maxBytes);
      const model = host.current;
      const signal = req.abort!.signal;
      const frames = runVideo(file, model, host, config, { signal, ticket: req.ticket!, deadlineMs: config.sloMs });
      const first = await frames.next();
      // Errors before the first frame (corrupt, too long) still get a proper status code and JSON body.
      reply.type('application/x-ndjson');
      reply.raw.writeHead(200, { 'content-type': 'application/x-ndjson' });
      if (!first.done) reply.raw.write(`${JSON.stringify(first.value)}\n`);
      try {
        for (let f = await frames.next(); !f.done; f = await frames.next()) {
          if (!reply.raw.write(`${JSON.stringify(f.value)}\n`)) await new Promise((r) => reply.raw.once('drain', r));
        }
        reply.raw.end(`${JSON.stringify({ done: true })}\n`);
      } catch (e) {
        // Headers are gone: the stream's last line carries the error instead.
        reply.raw.end(`${JSON.stringify(errorBody(httpErrorToCvopt(e)))}\n`);
      }
      return reply;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
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
