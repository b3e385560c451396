import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { RunConfig, TrialRecord } from './types.js';

/**
 * What a tune run keeps on disk: the append-only trial log (resume replays it), the cache of trials shared between
 * runs, and atomic writes of every other file.
 */

/** Finished trials from the log; a torn last line (a crash mid-write) is ignored and that trial reruns. */
export function readLog(file: string): Map<number, TrialRecord> {
  const out = new Map<number, TrialRecord>();
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as TrialRecord;
      if (r.type === 'trial' && Number.isInteger(r.id)) out.set(r.id, r);
    } catch {
      // torn write
    }
  }
  return out;
}

/** Append-only JSONL, fsync'd per record so a crash loses at most the trial in flight. */
export class TrialLog {
  constructor(private readonly file: string) {
    // Drop a torn tail so the next record starts on its own line.
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8');
      if (text.length && !text.endsWith('\n')) writeAtomic(file, text.slice(0, text.lastIndexOf('\n') + 1));
    }
  }

  append(r: TrialRecord): void {
    const fd = openSync(this.file, 'a');
    try {
      writeSync(fd, `${JSON.stringify(r)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Trials shared across runs, one JSON file per trial keyed by the genome and everything else that decides
 * a training's outcome; the fitness settings are not part of the key because fitness is recomputed on reuse.
 */
export class TrialCache {
  private readonly dir: string;
  private readonly salt: string;
  constructor(dir: string, cfg: RunConfig) {
    this.dir = resolve(dir);
    mkdirSync(this.dir, { recursive: true });
    const model = existsSync(cfg.model) ? `${resolve(cfg.model)}:${statSync(cfg.model).size}:${statSync(cfg.model).mtimeMs}` : cfg.model;
    this.salt = JSON.stringify([model, cfg.data, cfg.epochs, cfg.batch, cfg.device, cfg.seed, cfg.engine, cfg.latencyRuns]);
  }

  private file(key: string): string {
    return join(this.dir, `${createHash('sha256').update(this.salt).update(key).digest('hex').slice(0, 24)}.json`);
  }

  get(key: string): TrialRecord | undefined {
    const f = this.file(key);
    if (!existsSync(f)) return undefined;
    try {
      const r = JSON.parse(readFileSync(f, 'utf8')) as TrialRecord;
      return r.key === key && r.status === 'ok' ? r : undefined;
    } catch {
      return undefined;
    }
  }

  put(key: string, r: TrialRecord): void {
    writeAtomic(this.file(key), JSON.stringify(r));
  }
}

export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
