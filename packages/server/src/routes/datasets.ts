import { existsSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { CvoptError } from '@cvopt/core';
import type { Plugin, ServerContext } from '../context.js';
import { addRoute } from '../http/route.js';
import { newId } from '../auth/tokens.js';
import { extractArchive } from '../uploads/archive.js';
import { receiveToFile } from '../uploads/receive.js';
import { sniffFile } from '../uploads/sniff.js';
import { confineDetectionDataset, findDatasetRoot, validateDataset } from '../uploads/dataset-upload.js';
import type { DatasetRecord } from '../store/repository.js';

export const ARCHIVE_TYPES = ['application/octet-stream', 'application/zip', 'application/gzip', 'application/x-gzip', 'application/x-tar+gzip'];
const Params = z.object({ projectId: z.string().min(1).max(64) });
const NAME = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_", "-"; up to 63 characters');
const Task = z.enum(['detect', 'classify']);

const view = (d: DatasetRecord, withReport = false) => {
  const r = d.report as { ok?: boolean; stats?: { images?: number }; problems?: unknown[] };
  return {
    id: d.id,
    name: d.name,
    source: d.source,
    task: d.task,
    sizeBytes: d.sizeBytes,
    ok: r.ok ?? false,
    images: r.stats?.images ?? 0,
    warnings: r.problems?.length ?? 0,
    createdBy: d.createdBy,
    createdAt: d.createdAt,
    ...(withReport ? { report: d.report } : {}),
  };
};

/** Refuse a new upload when `maxConcurrentUploads` are already being received. */
export async function withUploadSlot<T>(ctx: ServerContext, fn: () => Promise<T>): Promise<T> {
  if (ctx.uploadsInFlight.n >= ctx.config.maxConcurrentUploads) {
    throw new CvoptError('QUEUE_FULL', `${ctx.config.maxConcurrentUploads} uploads are already in progress`, { retryAfterS: 5, hint: 'retry in a few seconds' });
  }
  ctx.uploadsInFlight.n++;
  try {
    return await fn();
  } finally {
    ctx.uploadsInFlight.n--;
  }
}

/** Datasets: archive uploads (extracted safely, validated like `cvopt dataset check`) and server-side paths. */
export const datasetRoutes: Plugin = (app, ctx) => {
  const area = join(ctx.config.dataDir, 'datasets');
  const tmp = join(ctx.config.dataDir, 'uploads');

  addRoute(app, ctx, {
    method: 'POST',
    url: '/projects/:projectId/datasets',
    action: 'dataset:write',
    summary: 'upload a YOLO dataset as .zip or .tar.gz (request body); it is extracted safely and validated, and kept only when valid',
    params: Params,
    query: z.object({ name: NAME, task: Task.optional() }),
    rawBody: { contentTypes: ARCHIVE_TYPES, maxBytes: ctx.config.datasetUploadMaxBytes },
    handler: async ({ req, query, principal, reply }) =>
      withUploadSlot(ctx, async () => {
        const project = principal.project!;
        if ((await ctx.repo.listDatasets(project.id)).some((d) => d.name === query.name)) {
          throw new CvoptError('CONFLICT', `dataset "${query.name}" already exists in ${project.name}`, { where: { field: 'name' }, hint: 'choose another name' });
        }
        const id = newId('ds');
        await mkdir(tmp, { recursive: true });
        const part = join(tmp, `${id}.part`);
        const dest = join(area, id);
        try {
          const got = await receiveToFile(req.raw, part, ctx.config.datasetUploadMaxBytes, req.headers['content-length']);
          ctx.metrics.uploadBytes.inc({ kind: 'dataset' }, got.bytes);
          const { kind } = await sniffFile(part);
          if (kind !== 'zip' && kind !== 'gzip') {
            throw new CvoptError('UNSUPPORTED_MEDIA_TYPE', `the upload is not a zip or gzip archive by its content (sniffed: ${kind})`, { hint: 'upload a .zip or .tar.gz of the dataset folder' });
          }
          const x = await extractArchive(part, kind === 'zip' ? 'zip' : 'tar.gz', dest, {
            maxEntries: ctx.config.archiveMaxEntries,
            maxExpandedBytes: ctx.config.archiveMaxExpandedBytes,
            maxRatio: ctx.config.archiveMaxRatio,
          });
          const root = findDatasetRoot(dest);
          confineDetectionDataset(root, dest);
          const report = await validateDataset(root, query.task);
          if (!report.ok) {
            const errors = report.problems.filter((p) => p.severity === 'error');
            throw new CvoptError('DATASET_INVALID', `the dataset has ${errors.length} error(s); first: ${errors[0]?.file}${errors[0]?.line ? `:${errors[0].line}` : ''}: ${errors[0]?.message}`, {
              details: { problems: errors.slice(0, 50) },
              hint: 'run `cvopt dataset check` on it locally, fix every error, upload again',
            });
          }
          const d = await ctx.repo.createDataset({
            id,
            projectId: project.id,
            name: query.name,
            source: 'upload',
            path: root,
            task: report.task,
            sizeBytes: x.expandedBytes,
            report,
            createdBy: principal.user.id,
            createdAt: ctx.now().toISOString(),
          });
          ctx.metrics.uploads.inc({ kind: 'dataset', outcome: 'ok' });
          return reply.status(201).send({ dataset: view(d, true) });
        } catch (e) {
          ctx.metrics.uploads.inc({ kind: 'dataset', outcome: 'refused' });
          await rm(dest, { recursive: true, force: true });
          throw e;
        } finally {
          await rm(part, { force: true });
        }
      }),
  });

  addRoute(app, ctx, {
    method: 'POST',
    url: '/projects/:projectId/datasets/register',
    action: 'dataset:register-path',
    summary: 'register a dataset already on the server\'s disk (server admins; validated, never copied)',
    params: Params,
    body: z.object({ name: NAME, path: z.string().min(1).max(4096), task: Task.optional() }),
    handler: async ({ body, principal, reply }) => {
      if (!isAbsolute(body.path)) throw new CvoptError('INVALID_ARGUMENT', 'path must be absolute', { where: { field: 'path' } });
      const path = resolve(body.path);
      if (!existsSync(path)) throw new CvoptError('NOT_FOUND', `${path} does not exist on the server`, { where: { field: 'path' } });
      const root = statSync(path).isFile() ? resolve(path, '..') : path;
      const report = await validateDataset(root, body.task);
      if (!report.ok) {
        throw new CvoptError('DATASET_INVALID', `the dataset at ${path} has errors`, { details: { problems: report.problems.filter((p) => p.severity === 'error').slice(0, 50) }, hint: 'run `cvopt dataset check` on it' });
      }
      const d = await ctx.repo.createDataset({
        id: newId('ds'),
        projectId: principal.project!.id,
        name: body.name,
        source: 'path',
        path: root,
        task: report.task,
        sizeBytes: 0,
        report,
        createdBy: principal.user.id,
        createdAt: ctx.now().toISOString(),
      });
      return reply.status(201).send({ dataset: view(d, true) });
    },
  });

  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/datasets',
    action: 'dataset:read',
    summary: "the project's datasets",
    params: Params,
    handler: async ({ principal }) => ({ datasets: (await ctx.repo.listDatasets(principal.project!.id)).map((d) => view(d)) }),
  });
  addRoute(app, ctx, {
    method: 'GET',
    url: '/projects/:projectId/datasets/:datasetId',
    action: 'dataset:read',
    summary: 'one dataset with its validation report',
    params: Params.extend({ datasetId: z.string().min(1).max(64) }),
    handler: async ({ params, principal }) => ({ dataset: view(await mustDataset(ctx, principal.project!.id, params.datasetId), true) }),
  });
  addRoute(app, ctx, {
    method: 'DELETE',
    url: '/projects/:projectId/datasets/:datasetId',
    action: 'dataset:write',
    summary: 'delete a dataset (an uploaded one\'s files too)',
    params: Params.extend({ datasetId: z.string().min(1).max(64) }),
    handler: async ({ params, principal }) => {
      const d = await mustDataset(ctx, principal.project!.id, params.datasetId);
      await ctx.repo.deleteDataset(d.projectId, d.id);
      if (d.source === 'upload') await rm(join(area, d.id), { recursive: true, force: true });
      return { deleted: d.id };
    },
  });
};

export async function mustDataset(ctx: ServerContext, projectId: string, id: string): Promise<DatasetRecord> {
  const d = await ctx.repo.dataset(projectId, id);
  if (!d) throw new CvoptError('NOT_FOUND', `dataset ${id} not found in this project`, { where: { field: 'datasetId' }, hint: 'list them with GET /projects/:projectId/datasets' });
  return d;
}
