import { CvoptError } from '@cvopt/core';

/** Keys that would reach a prototype if the parsed object were ever merged; refused as Fastify's parser does. */
const POISONED = /"(?:__proto__|constructor)"\s*:/;

/**
 * The image of a /v1/predict JSON body, `{"image": "<base64>"}` (a data: URL prefix allowed), as bytes. Pure, so
 * it runs inline for small bodies and in the offload worker for large ones: parsing and base64-decoding megabytes
 * would otherwise hold the HTTP thread while refusals wait.
 */
export function decodeJsonImage(bytes: Uint8Array): Buffer {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new CvoptError('INVALID_ARGUMENT', `the JSON body is malformed: ${(e as Error).message}`, { where: { field: 'body' }, hint: 'send valid JSON' });
  }
  if (POISONED.test(text)) {
    throw new CvoptError('INVALID_ARGUMENT', 'the JSON body is malformed', { where: { field: 'body' }, hint: 'send valid JSON (and no "__proto__" or "constructor" keys)' });
  }
  const image = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { image?: unknown }).image : undefined;
  if (typeof image !== 'string' || image.length === 0) {
    throw new CvoptError('INVALID_ARGUMENT', 'the JSON body needs "image": a base64-encoded image', { where: { field: 'body.image' } });
  }
  const b64 = image.replace(/^data:[^;]+;base64,/, '');
  if (!/^[A-Za-z0-9+/=\s_-]+$/.test(b64)) {
    throw new CvoptError('INVALID_ARGUMENT', '"image" is not valid base64', { where: { field: 'body.image' }, hint: 'encode the file bytes with base64' });
  }
  return Buffer.from(b64, 'base64');
}
