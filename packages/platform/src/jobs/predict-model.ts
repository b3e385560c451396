import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { CvoptError, ENGINES, EngineIdSchema, PredictPayloadSchema, type EngineId, type ModelManifest, type PredictPayload } from '@cvopt/core';
import { resolveModel } from '../models/resolve.js';
import { assertEngineAvailable, engineModel } from '../models/variants.js';

/** The predict job's result schema and how it finds the model file for an engine (artifact, cache, variants). */

export type Payload = z.output<typeof PredictPayloadSchema>;

export const SourceResultSchema = z.object({
  source: z.string(),
  kind: z.enum(['image', 'video']),
  width: z.number(),
  height: z.number(),
  /** Frames (or 1 for an image) that went through the model. */
  frames: z.number(),
  detections: z.number(),
  /** Distinct track ids seen (tracking only). */
  tracks: z.number().optional(),
  fps: z.number().optional(),
  /** Annotated image or video written. */
  saved: z.string().optional(),
  mot: z.string().optional(),
  /** Classification: the top-k of the (last) frame. */
  topk: z.array(z.object({ classId: z.number(), name: z.string(), score: z.number() })).optional(),
});

export const PredictResultSchema = z.object({
  runDir: z.string(),
  model: z.string(),
  engine: z.string(),
  task: z.enum(['detect', 'classify']),
  sources: z.array(SourceResultSchema),
  frames: z.number(),
  detections: z.number(),
  seconds: z.number(),
  /** Frames (or images) per second end to end, wall clock. */
  fps: z.number(),
  /**
   * Milliseconds per frame in each stage (they overlap, so the wall time per frame is less than the sum), and
   * `waiting`: how long inference sat idle for a decoded frame, per frame after its first (well above zero: decoding
   * is the bottleneck, not the engine; 0 in results recorded before it was measured).
   */
  speed: z.object({ preprocess: z.number(), inference: z.number(), postprocess: z.number(), waiting: z.number().default(0) }),
  /** ONNX Runtime intra-op threads the run used: the caller's, 1 when one was as fast for this model, 0 for ONNX Runtime's own choice. */
  intraOpThreads: z.number().int().nonnegative().optional(),
  labels: z.string().optional(),
  json: z.string().optional(),
  crops: z.string().optional(),
  /** Ctrl-C / cancel: the files hold everything up to the last frame processed. */
  interrupted: z.boolean(),
  notes: z.array(z.string()),
});
export type PredictResult = z.infer<typeof PredictResultSchema>;

export { PredictPayloadSchema, type PredictPayload };

export interface PredictModel {
  /** The file the engine runs (the FP32 model, or its engine variant from the model cache). */
  modelPath: string;
  manifest: ModelManifest;
  engine: EngineId;
  notes: string[];
}

/** The artifact's engine when it records one (`artifact.json` / `config.json` with an `engine` field). */
function artifactEngine(dir: string): EngineId | undefined {
  for (const name of ['artifact.json', 'config.json', 'runtime.json']) {
    const f = join(dir, name);
    if (!existsSync(f)) continue;
    try {
      const e = (JSON.parse(readFileSync(f, 'utf8')) as { engine?: unknown }).engine;
      const parsed = EngineIdSchema.safeParse(e);
      if (parsed.success) return parsed.data;
    } catch {
      // Not JSON we understand: fall back to the default engine.
    }
  }
  return undefined;
}

/**
 * MODEL (a preset, checkpoint or ONNX file, resolved by the one model resolver) or ARTIFACT (a folder with
 * model.onnx, whose recorded engine is the default), and the file the engine id runs: the shared engine-variant
 * lookup (models/variants.ts) builds or reuses the INT8 / FP16 model, exactly what `cvopt eval` and bench run.
 */
export async function resolvePredictModel(model: string, o: { engine?: EngineId; data?: string; cacheDir?: string; signal?: AbortSignal; onStage?: (m: string) => void } = {}): Promise<PredictModel> {
  if (!existsSync(model) && !/^[\w.-]+$/.test(model)) {
    throw new CvoptError('NOT_FOUND', `model ${model} does not exist`, { where: { file: model }, hint: 'pass an .onnx file, a checkpoint, a preset name or an artifact folder written by `cvopt package`' });
  }
  let source = model;
  let chosen = o.engine;
  if (existsSync(model) && statSync(model).isDirectory()) {
    const base = resolve(model);
    const inDir = [join(base, 'model.onnx'), join(base, 'model', 'model.onnx')].find((p) => existsSync(p));
    if (!inDir) throw new CvoptError('MODEL_INVALID', `artifact folder ${model} has no model.onnx`, { where: { file: model }, hint: 'pass the .onnx file itself, or a folder written by `cvopt package`' });
    chosen ??= artifactEngine(base);
    source = inDir;
  }
  const id: EngineId = chosen ?? 'ort-cpu';
  if (ENGINES[id].runtime !== 'onnxruntime') {
    throw new CvoptError('ENGINE_UNAVAILABLE', `predict runs ONNX Runtime engines; ${id} is ${ENGINES[id].summary}`, { where: { field: '--engine' }, hint: 'choose ort-cpu, ort-cpu-int8, ort-cuda, ort-cuda-fp16, tensorrt-fp16 or tensorrt-int8' });
  }
  await assertEngineAvailable(id);
  const resolved = await resolveModel(source, { ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}), ...(o.signal ? { signal: o.signal } : {}), ...(o.onStage ? { onStage: o.onStage } : {}) });
  const variant = await engineModel(id, { onnx: resolved.onnx, manifest: resolved.manifest, describe: basename(resolved.onnx) }, {
    cacheDir: resolved.cacheDir,
    ...(o.data ? { data: o.data } : {}),
    ...(o.onStage ? { onStage: o.onStage } : {}),
  });
  const notes = [...resolved.notes];
  if (variant.onnx !== resolved.onnx) notes.push(`${variant.describe} (${variant.onnx})`);
  return { modelPath: variant.onnx, manifest: variant.manifest, engine: id, notes };
}
