import { existsSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { join } from 'node:path';
import { z } from 'zod';
import { CvoptError } from '@cvopt/core';
import type { Plugin } from '../context.js';
import { Deployments } from '../deployments.js';
import { addRoute } from '../http/route.js';
import { mustJob, outputOf } from './jobs.js';
import { mustModel } from './models.js';

const Params = z.object({ projectId: z.string().min(1).max(64) });
export const PREDICT_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/bmp'];

/** Bodies above this are not drained after a refusal: the connection is closed instead (as the runtime does). */
const REFUSAL_DRAIN_MAX_BYTES = 1 << 20;

/**
 * What the embedded runtime reads: the request stream itself when its length is declared (the runtime decides
 * admission from the headers, so a refused prediction costs no body read here), else the body read here under
 * the size limit.
 */
async function bodyFor(req: FastifyRequest, maxBytes: number): Promise<Readable | Buffer> {
  if (req.headers['content-length'] !== undefined) {
    // Node has already refused a malformed Content-Length (400) before any route runs.
    const declared = Number(req.headers['content-length']);
    if (declared > maxBytes) throw new CvoptError('PAYLOAD_TOO_LARGE', `the image is ${declared} bytes, above the limit of ${maxBytes}`, { hint: 'downscale or recompress it' });
    return req.raw;
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req.raw as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > maxBytes) throw new CvoptError('PAYLOAD_TOO_LARGE', `the image is larger than ${maxBytes} bytes`, { hint: 'downscale or recompress it' });
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/**
 * A refusal from the runtime left the body unread: a large one closes the connection instead of being read, a
 * small one is left to Node's drain. The connection is not paced as the runtime paces its own: here it may be a
 * reverse proxy's, shared by many users (measured: pacing sent other users' metadata calls to p95 143 ms,
 * max 1 s, behind paused sockets; without it p95 25 ms with 10 clients storming a YOLOv8n deployment).
 */
function refuseCheaply(req: FastifyRequest, reply: FastifyReply): void {
  if (req.raw.complete || Number(req.headers['content-length'] ?? Infinity) <= REFUSAL_DRAIN_MAX_BYTES) return;
  void reply.header('connection', 'close');
  const socket = req.raw.socket;
  reply.raw.once('finish', () => socket?.destroy());
}

/** A project's deployment (what its prediction endpoint serves) and the endpoint itself. */
export const predictRoutes: Plugin = (app, ctx) => {
  addRoute(app, ctx, {
    method: 'PUT',
    url: '/projects/:projectId/deployment',
    action: 'project:manage',
    summary: 'choose what the prediction endpoint serves: an ONNX model resource, or the artifact of a succeeded package job',
    params: Params,
    body: z.union([z.object({ modelId: z.string().min(1).max(64) }), z.object({ jobId: z.string().min(1).max(128) })]),
    handler: async ({ body, principal }) => {
      const project = principal.project!;
      let target: string;
      if ('modelId' in body) {
        const m = await mustModel(ctx, project.id, body.modelId);
        if (m.format !== 'onnx' || !m.path) throw new CvoptError('CONFLICT', `model ${m.name} is ${m.format}; only an ONNX model is served`, { where: { field: 'modelId' }, hint: 'export it first (a job of kind export)' });
        if (!existsSync(join(m.path, '..', 'model.json'))) throw new CvoptError('MANIFEST_INVALID', `model ${m.name} has no model.json (it could not be inferred at upload)`, { where: { field: 'modelId' } });
        target = m.path;
      } else {
        const j = await mustJob(ctx, project.id, body.jobId);
        if (j.kind !== 'package' && j.kind !== 'export' && j.kind !== 'quantize') throw new CvoptError('CONFLICT', `job ${j.id} is a ${j.kind} job; deploy a package, export or quantize job`, { where: { field: 'jobId' } });
        if (j.state !== 'succeeded') throw new CvoptError('CONFLICT', `job ${j.id} is ${j.state}`, { where: { field: 'jobId' }, hint: 'wait for it to succeed' });
        target = outputOf(j);
        if (!existsSync(target) || (statSync(target).isDirectory() && !existsSync(join(target, 'model.onnx')))) {
          throw new CvoptError('NOT_FOUND', `job ${j.id} left no model at ${target}`, { where: { field: 'jobId' } });
        }
      }
      // Load now, so a broken artifact fails here and not on the first prediction.
      await ctx.deployments.unload(project.id);
      await ctx.deployments.get(project.id, target);
      const deployment = { source: body, target, setBy: principal.user.username, setAt: ctx.now().toISOString() };
      await ctx.repo.setDeployment(project.id, deployment);
      return { deployment };
    },
  });

  addRoute(app, ctx, {
    method: 'POST',
    url: '/projects/:projectId/predict',
    action: 'predict',
    summary: "run the project's deployed model on one image (request body: JPEG/PNG/WebP/BMP); answers the runtime's detections",
    params: Params,
    rawBody: { contentTypes: PREDICT_TYPES, maxBytes: ctx.config.predictMaxBytes },
    handler: async ({ req, reply, principal }) => {
      const project = principal.project!;
      if (!project.deployment) throw Deployments.noDeployment(project.name);
      const runtime = await ctx.deployments.get(project.id, project.deployment.target);
      const res = await runtime.app.inject({
        method: 'POST',
        url: '/v1/predict',
        headers: {
          'content-type': req.headers['content-type'] ?? 'application/octet-stream',
          ...(req.headers['content-length'] ? { 'content-length': req.headers['content-length'] } : {}),
          ...(req.headers['x-deadline-ms'] ? { 'x-deadline-ms': String(req.headers['x-deadline-ms']) } : {}),
        },
        payload: await bodyFor(req, ctx.config.predictMaxBytes),
      });
      if (res.statusCode === 429 || res.statusCode === 503) refuseCheaply(req, reply);
      for (const h of ['retry-after', 'content-type']) if (res.headers[h]) void reply.header(h, String(res.headers[h]));
      return reply.status(res.statusCode).send(res.body);
    },
  });
};
