import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CvoptError, ORT_ENGINE_IDS, toCvoptError, type EngineId } from '@cvopt/core';
import { STRATEGY_NAMES, tuneSpace } from '@cvopt/optimizer';
import { parse as parseYaml, LineCounter, parseDocument, isMap, isPair, isScalar } from 'yaml';
import type { RunConfig, TuneConstraints, TuneOptions } from './types.js';

/** A tune run's settings: checked options (saved as run.json, compared on resume) and the search-space file. */

export function validate(opts: TuneOptions): RunConfig {
  const field = (name: string, message: string, hint?: string): never => {
    throw new CvoptError('INVALID_ARGUMENT', message, { where: { field: name }, ...(hint ? { hint } : {}) });
  };
  if (!STRATEGY_NAMES.includes(opts.strategy)) field('strategy', `unknown strategy "${String(opts.strategy)}"`, `use one of ${STRATEGY_NAMES.join(', ')}`);
  const int = (name: string, v: number | undefined, dflt: number, min: number): number => {
    const n = v ?? dflt;
    if (!Number.isInteger(n) || n < min) field(name, `${name} must be an integer ≥ ${min}, got ${String(n)}`);
    return n;
  };
  const pos = (name: string, v: number | undefined): number | undefined => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) field(name, `${name} must be a number > 0, got ${String(v)}`);
    return v;
  };
  const engine = (opts.engine ?? 'ort-cpu') as EngineId;
  if (!ORT_ENGINE_IDS.includes(engine)) field('engine', `tuning measures latency on an ONNX Runtime engine, not "${String(engine)}"`, `pass --engine with one of ${ORT_ENGINE_IDS.join(', ')}`);
  const imgsz = int('imgsz', opts.imgsz, 640, 32);
  if (imgsz % 32 !== 0) field('imgsz', `imgsz must be a multiple of 32, got ${imgsz}`);
  const fitness: RunConfig['fitness'] = {};
  if (pos('wMap50', opts.wMap50) !== undefined) fitness.wMap50 = opts.wMap50!;
  if (pos('wMap5095', opts.wMap5095) !== undefined) fitness.wMap5095 = opts.wMap5095!;
  if (opts.latencyWeight !== undefined) {
    if (!(Number.isFinite(opts.latencyWeight) && opts.latencyWeight >= 0)) field('latencyWeight', `latency weight must be ≥ 0, got ${opts.latencyWeight}`);
    fitness.latencyWeight = opts.latencyWeight;
  }
  if (pos('targetLatencyMs', opts.targetLatencyMs) !== undefined) fitness.targetLatencyMs = opts.targetLatencyMs!;
  const constraints: TuneConstraints = {};
  const maxLatency = pos('maxLatencyMs', opts.constraints?.maxLatencyMs) ?? (opts.strategy === 'constrained' ? opts.targetLatencyMs : undefined);
  if (maxLatency !== undefined) constraints.maxLatencyMs = maxLatency;
  if (pos('maxSizeMb', opts.constraints?.maxSizeMb) !== undefined) constraints.maxSizeMb = opts.constraints!.maxSizeMb!;
  const minMap50 = opts.constraints?.minMap50;
  if (minMap50 !== undefined) {
    if (!(minMap50 > 0 && minMap50 <= 1)) field('minMap50', `minimum mAP50 must be in (0, 1], got ${minMap50}`);
    constraints.minMap50 = minMap50;
  }
  if (opts.maxParallel !== undefined) int('maxParallel', opts.maxParallel, 1, 1);
  const device = opts.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') field('device', `device must be cpu or cuda, got "${String(device)}"`);
  return {
    model: opts.model,
    data: resolve(opts.data),
    strategy: opts.strategy,
    generations: int('generations', opts.generations, 5, 1),
    population: int('population', opts.population, 8, 2),
    epochs: int('epochs', opts.epochs, 10, 1),
    imgsz,
    batch: int('batch', opts.batch, 16, 1),
    device,
    seed: int('seed', opts.seed, 0, 0),
    engine,
    fitness,
    constraints,
    sizeObjective: Boolean(opts.sizeObjective),
    latencyRuns: int('latencyRuns', opts.latencyRuns, 30, 1),
    space: opts.spaceFile ? readSpaceFile(opts.spaceFile) : null,
  };
}

/** Parse a search-space YAML file; a validation error gets the file and the line of the offending key. */
export function readSpaceFile(file: string): unknown {
  if (!existsSync(file)) throw new CvoptError('NOT_FOUND', `search space file ${file} does not exist`, { where: { file }, hint: 'check the --space path' });
  const text = readFileSync(file, 'utf8');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new CvoptError('INVALID_CONFIG', `${file} is not valid YAML: ${e.message.split('\n')[0]}`, {
      where: { file, ...(e.linePos?.[0] ? { line: e.linePos[0].line } : {}) },
      hint: 'fix the YAML syntax at that line',
    });
  }
  const data = parseYaml(text) as unknown;
  try {
    tuneSpace(640, data);
  } catch (e) {
    const err = toCvoptError(e);
    if (err.code !== 'INVALID_CONFIG') throw err;
    const fieldPath = err.where?.field;
    let line: number | undefined;
    if (fieldPath && isMap(doc.contents)) {
      // Walk as deep as the path goes; the deepest key found gives the line.
      let node: unknown = doc.contents;
      for (const part of fieldPath.split('.')) {
        if (!isMap(node)) break;
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === part);
        if (!pair || !isPair(pair)) break;
        const k = pair.key as { range?: [number, number, number] };
        if (k.range) line = lineCounter.linePos(k.range[0]).line;
        node = pair.value;
      }
    }
    throw new CvoptError('INVALID_CONFIG', err.message, { where: { file, ...(line !== undefined ? { line } : {}), ...(fieldPath ? { field: fieldPath } : {}) }, ...(err.hint ? { hint: err.hint } : {}) });
  }
  return data;
}
