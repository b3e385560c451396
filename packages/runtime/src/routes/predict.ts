import type { FastifyInstance, FastifyRequest } from 'fastify';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { CvoptError } from '@cvopt/core';
import { IMAGE_TYPES, mediaType, remainingMs, type RouteContext } from '../http/context.js';
import type { RuntimeConfig } from '../config.js';
import { decodeJsonImage } from '../json-image.js';
import { filePart, parseMultipart } from '../multipart.js';
import type { Offload } from '../offload.js';
import { predictImage } from '../pipeline.js';
import * as S from '../schemas.js';

/**
 * POST /v1/predict: one image (raw, multipart or base64 JSON) through the model. Register it in a scope whose
 * application/json parser hands over the raw bytes (see app.ts): the JSON is decoded here, off the HTTP thread
 * when large.
 */
export function predictRoutes(app: FastifyInstance, { config, host, offload, responseCache }: RouteContext): void {
  app.post('/v1/predict', { schema: S.predict, config: { permission: 'predict', admits: true } }, async (req, reply) => {
    const image = await imageFromBody(req, config, offload);
    const model = host.current;
    const cacheKey = responseCache?.keyOf(image, model.generation);
    if (responseCache && cacheKey) {
      const cached = await responseCache.get(cacheKey);
      if (cached) {
        req.detections = cached.detections?.length;
        void reply.header('x-cache', 'hit');
        return { ...cached, timeMs: Math.round((performance.now() - req.startedAt) * 100) / 100 };
      }
    }
    // Decoding waits for the next turn of the event loop: in a burst, every request already read gets its
    // admission answer (and refusals go out) before any admitted one spends the thread on its image.
    await yieldToIo();
    const answer = await predictImage(image, model, host, config, {
      signal: req.abort!.signal,
      ticket: req.ticket!,
      offload,
      deadlineMs: () => remainingMs(req),
      // The wait for a decode slot is queueing, which admission already estimates from the queue; only the
      // request's own work before the queue (body, decode, letterbox) is "prep".
      onPrepared: (slotWaitMs) => model.scheduler.observePrep(performance.now() - req.startedAt - slotWaitMs),
      timeMs: () => performance.now() - req.startedAt,
    });
    req.detections = answer.detections?.length;
    if (responseCache && cacheKey) responseCache.set(cacheKey, answer);
    return answer;
  });
}

async function imageFromBody(req: FastifyRequest, config: RuntimeConfig, offload: Offload): Promise<Buffer> {
  const type = mediaType(req);
  if (IMAGE_TYPES.includes(type)) return req.body as Buffer;
  if (type === 'multipart/form-data') {
    const part = filePart(parseMultipart(req.body as Buffer, req.headers['content-type'] ?? '', config.multipartMaxParts));
    if (part.contentType && !IMAGE_TYPES.includes(part.contentType) && part.contentType !== 'application/octet-stream') {
      throw new CvoptError('UNSUPPORTED_MEDIA_TYPE', `the uploaded part has content type "${part.contentType}", not an image`, {
        where: { field: part.name ?? 'file' },
        hint: 'upload a JPEG, PNG, WebP or BMP image',
      });
    }
    return part.data;
  }
  if (type === 'application/json') {
    const bytes = req.body as Buffer;
    // Parsing and base64-decoding a large body would hold the HTTP thread; a small one is cheaper inline than a hop.
    return bytes.length >= config.offloadMinBytes ? offload.jsonImage(bytes) : decodeJsonImage(bytes);
  }
  throw new CvoptError('UNSUPPORTED_MEDIA_TYPE', `content type "${type || '(none)'}" is not accepted by /v1/predict`, {
    where: { field: 'content-type' },
    hint: `send one of ${IMAGE_TYPES.join(', ')}, multipart/form-data or application/json {"image": "<base64>"}`,
  });
}
