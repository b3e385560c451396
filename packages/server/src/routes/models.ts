import { writeFileSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { CvoptError, ModelManifestSchema } from '@cvopt/core';
import { checkOnnx, inferManifestWithNotes, readOnnx } from '@cvopt/onnx';
import type { Plugin, ServerContext } from '../context.js';
import { addRoute } from '../http/route.js';
import { newId } from '../auth/tokens.js';
import { receiveToFile } from '../uploads/receive.js';
import { sniffFile } from '../uploads/sniff.js';
import type { ModelRecord } from '../store/repository.js';
import { withUploadSlot } from './datasets.js';

const Params = z.object({ projectId: z.string().min(1).max(64) });
const NAME = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_", "-"; up to 63 characters');
/** The architectures the trainer builds from scratch: YOLOv8 scales (p = the tiny quickstart scale), detect or classify. */
export const PRESET = /^yolov8[pnsmlx](-cls)?$/;

const view = (m: ModelRecord, withReport = false) => ({
  id: m.id,
  name: m.name,
  format: m.format,
  loader: m.loader,
  preset: m.preset ?? null,
  sha256: m.sha256 ?? null,
  sizeBytes: m.sizeBytes,
  createdBy: m.createdBy,
  createdAt: m.createdAt,
  ...(withReport ? { report: m.report } : {}),
});

/**
 * Models: uploads sniffed by content. ONNX is parsed, checked like `cvopt check` (a real ONNX Runtime session
 * included) and gets a model.json inferred beside it; a PyTorch .pt (zip) or .pkl (pickle) is stored as bytes
 * and marked for the worker's restricted unpickler — the server never unpickles anything.
 */
export const modelRoutes: Plugin = (app, ctx) => {
  const area = join(ctx.config.dataDir, 'models');

  addRoute(app, ctx, {
    method: 'POST',
    url: '/projects/:projectId/models',
    action: 'model:write',
    summary: 'upload a model file (request body): .onnx, or PyTorch .pt / .pkl; the type is read from the content',
    params: Params,
    query: z.object({ name: NAME }),
    rawBody: { contentTypes: ['application/octet-stream'], maxBytes: ctx.config.modelUploadMaxBytes },
    handler: async ({ req, query, principal, reply }) =>
      withUploadSlot(ctx, async () => {
        const project = principal.project!;
        if ((await ctx.repo.listModels(project.id)).some((m) => m.name === query.name)) {
          throw new CvoptError('CONFLICT', `model "${query.name}" already exists in ${project.name}`, { where: { field: 'name' } });
        }
        const id = newId('mdl');
        const dir = join(area, id);
        await mkdir(dir, { recursive: true });
        const part = join(dir, 'upload.part');
        try {
          const got = await receiveToFile(req.raw, part, ctx.config.modelUploadMaxBytes, req.headers['content-length']);
          ctx.metrics.uploadBytes.inc({ kind: 'model' }, got.bytes);
          const { kind } = await sniffFile(part);
          let format: ModelRecord['format'];
          let loader: ModelRecord['loader'];
          let report: unknown;
          let path: string;
          if (kind === 'torch-zip' || kind === 'pickle') {
            format = kind === 'torch-zip' ? 'pt' : 'pkl';
            loader = 'safe-unpickler';
            path = join(dir, `model.${format}`);
            await rename(part, path);
            report = { sniffed: kind, note: 'stored as bytes; only the worker\'s restricted unpickler loads it (no code from the file runs)' };
          } else if (kind === 'protobuf') {
            path = join(dir, 'model.onnx');
            await rename(part, path);
            const loaded = readOnnx(path);
            const check = await checkOnnx(loaded);
            let manifest: { written: boolean; notes: string[]; error?: string };
            try {
              const inferred = inferManifestWithNotes(loaded);
              writeFileSync(join(dir, 'model.json'), JSON.stringify(inferred.manifest, null, 2) + '\n');
              manifest = { written: true, notes: inferred.notes };
            } catch (e) {
              manifest = { written: false, notes: [], error: (e as Error).message };
            }
            format = 'onnx';
            loader = 'onnx';
            report = { sniffed: kind, check, manifest };
          } else {
            throw new CvoptError('UNSUPPORTED_MEDIA_TYPE', `the upload is not an ONNX model, a PyTorch .pt or a pickle by its content (sniffed: ${kind})`, {
              hint: 'upload model.onnx, a torch.save() .pt, or a .pkl',
            });
          }
          const m = await ctx.repo.createModel({
            id,
            projectId: project.id,
            name: query.name,
            format,
            path,
            sha256: got.sha256,
            sizeBytes: got.bytes,
            loader,
            report,
            createdBy: principal.user.id,
            createdAt: ctx.now().toISOString(),
          });
          ctx.metrics.uploads.inc({ kind: 'model', outcome: 'ok' });
          return reply.status(201).send({ model: view(m, true) });
        } catch (e) {
          ctx.metrics.uploads.inc({ kind: 'model', outcome: 'refused' });
          await rm(dir, { recursive: true, force: true });
          throw e;
        }
      }),
  });

  addRoute(app, ctx, {
    method: 'POST',
    url: '/projects/:projectId/models/preset',
    action: 'model:write',
    summary: 'register a preset architecture (yolov8n, yolov8s, … yolov8n-cls) as a model',
    params: Params,
    body: z.object({ name: NAME, preset: z.string().regex(PRESET, 'a YOLOv8 preset: yolov8p|n|s|m|l|x, optionally with -cls') }),
    handler: async ({ body, principal, reply }) => {
      const m = await ctx.repo.createModel({
        id: newId('mdl'),
        projectId: principal.project!.id,
        name: body.name,
        format: 'preset',
        preset: body.preset,
        sizeBytes: 0,
        loader: 'preset',
        report: {},
        createdBy: principal.user.id,
        createdAt: ctx.now().toISOString(),
      });
      return reply.status(201).send({ model: view(m) });
    },
  });

  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/models',
    action: 'model:read',
    summary: "the project's models",
    params: Params,
    handler: async ({ principal }) => ({ models: (await ctx.repo.listModels(principal.project!.id)).map((m) => view(m)) }),
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/models/:modelId',
    action: 'model:read',
    summary: 'one model with its check report',
    params: Params.extend({ modelId: z.string().min(1).max(64) }),
    handler: async ({ params, principal }) => ({ model: view(await mustModel(ctx, principal.project!.id, params.modelId), true) }),
  });
  addRoute(app, ctx, {
    method: 'PUT',
    url: '/projects/:projectId/models/:modelId/manifest',
    action: 'model:write',
    summary: "replace an ONNX model's inferred model.json with the one written beside it by export or quantize (class names, preprocessing)",
    params: Params.extend({ modelId: z.string().min(1).max(64) }),
    body: ModelManifestSchema,
    handler: async ({ params, principal, body }) => {
      const m = await mustModel(ctx, principal.project!.id, params.modelId);
      if (m.format !== 'onnx' || !m.path) throw new CvoptError('CONFLICT', `model ${m.id} is ${m.format}, not ONNX: only an ONNX model has a model.json`, { where: { field: 'modelId' } });
      writeFileSync(join(dirname(m.path), 'model.json'), `${JSON.stringify(body, null, 2)}\n`);
      return { model: view(m) };
    },
  });
  addRoute(app, ctx, {
    method: 'DELETE',
    url: '/projects/:projectId/models/:modelId',
    action: 'model:write',
    summary: 'delete a model and its files',
    params: Params.extend({ modelId: z.string().min(1).max(64) }),
    handler: async ({ params, principal }) => {
      const m = await mustModel(ctx, principal.project!.id, params.modelId);
      await ctx.repo.deleteModel(m.projectId, m.id);
      if (m.path) await rm(join(area, m.id), { recursive: true, force: true });
      return { deleted: m.id };
    },
  });
};

export async function mustModel(ctx: ServerContext, projectId: string, id: string): Promise<ModelRecord> {
  const m = await ctx.repo.model(projectId, id);
  if (!m) throw new CvoptError('NOT_FOUND', `model ${id} not found in this project`, { where: { field: 'modelId' }, hint: 'list them with GET /projects/:projectId/models' });
  return m;
}
