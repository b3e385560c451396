import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { CvoptError, EngineIdSchema, parseWith } from '@cvopt/core';
import { listTree } from './bundle.js';

/** MANIFEST.json: what the artifact is, where it came from, and the sha256 of every other file in it. */

export const MANIFEST_FILE = 'MANIFEST.json';

const ProvenanceRef = z.object({ name: z.string(), sha256: z.string() });

export const ArtifactManifestSchema = z.object({
  schemaVersion: z.literal(1),
  kind: z.literal('cvopt-artifact'),
  name: z.string(),
  createdAt: z.string(),
  engine: EngineIdSchema,
  variant: z.enum(['cpu', 'gpu']),
  model: z.object({ file: z.string(), sha256: z.string(), precision: z.string(), task: z.string(), name: z.string() }),
  /** How the container starts; `cvopt serve ARTIFACT_DIR` runs the same command line. */
  entrypoint: z.object({ nodeFlags: z.array(z.string()), main: z.string(), args: z.array(z.string()) }),
  /** Where the model came from, by file name and hash only (no host paths). */
  provenance: z.object({
    sourceModel: ProvenanceRef.optional(),
    trainingRun: z.string().optional(),
    benchmarkReport: ProvenanceRef.extend({ createdAt: z.string().optional(), machine: z.string().optional() }).optional(),
    decision: ProvenanceRef.extend({ winner: z.string().nullable(), rule: z.string() }).optional(),
    cvoptVersion: z.string(),
    nodeVersion: z.string(),
  }),
  runtime: z.object({ workspaces: z.array(z.string()), packages: z.record(z.string(), z.string()) }),
  files: z.record(z.string(), z.union([z.object({ sha256: z.string(), bytes: z.number().int() }), z.object({ link: z.string() })])),
});
export type ArtifactManifest = z.infer<typeof ArtifactManifestSchema>;
export type FileEntry = ArtifactManifest['files'][string];

export function sha256Of(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256File(path: string): string {
  return sha256Of(readFileSync(path));
}

/** Hash every file under `dir` except MANIFEST.json itself; links are recorded by target, never followed. */
export function hashTree(dir: string): Record<string, FileEntry> {
  const files: Record<string, FileEntry> = {};
  for (const rel of listTree(dir)) {
    if (rel === MANIFEST_FILE) continue;
    const abs = join(dir, rel);
    const st = lstatSync(abs);
    files[rel] = st.isSymbolicLink() ? { link: readlinkSync(abs) } : { sha256: sha256File(abs), bytes: st.size };
  }
  return files;
}

export interface VerifyProblem {
  file: string;
  problem: 'changed' | 'missing' | 'unexpected';
  detail: string;
}

export interface VerifyResult {
  ok: boolean;
  files: number;
  problems: VerifyProblem[];
  manifest: ArtifactManifest;
}

export function readArtifactManifest(dir: string): ArtifactManifest {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) {
    throw new CvoptError('NOT_FOUND', `${dir} holds no ${MANIFEST_FILE}`, { where: { file }, hint: 'pass a directory written by `cvopt package`' });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CvoptError('MANIFEST_INVALID', `${file} is not valid JSON: ${(e as Error).message}`, { where: { file } });
  }
  return parseWith(ArtifactManifestSchema, raw, { what: MANIFEST_FILE, file, code: 'MANIFEST_INVALID' });
}

/** Recompute every checksum; name each file that changed, went missing, or appeared. */
export function verifyArtifact(dir: string): VerifyResult {
  const manifest = readArtifactManifest(dir);
  const actual = hashTree(dir);
  const problems: VerifyProblem[] = [];
  for (const [file, want] of Object.entries(manifest.files)) {
    const got = actual[file];
    if (!got) problems.push({ file, problem: 'missing', detail: 'listed in MANIFEST.json but absent' });
    else if ('link' in want) {
      if (!('link' in got) || got.link !== want.link) problems.push({ file, problem: 'changed', detail: `expected a link to ${want.link}` });
    } else if (!('sha256' in got) || got.sha256 !== want.sha256) {
      problems.push({ file, problem: 'changed', detail: 'sha256' in got ? `sha256 ${got.sha256.slice(0, 12)}… instead of ${want.sha256.slice(0, 12)}…` : 'is a link now' });
    }
  }
  for (const file of Object.keys(actual)) if (!(file in manifest.files)) problems.push({ file, problem: 'unexpected', detail: 'not listed in MANIFEST.json' });
  problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  return { ok: problems.length === 0, files: Object.keys(manifest.files).length, problems, manifest };
}

/**
 * The container's entry point as a command line for this machine: the same Node flags, the same bundled main,
 * with the artifact folder in place of the image's. `cvopt serve ARTIFACT_DIR` runs exactly this.
 */
export function entrypointCommand(dir: string): { command: string; args: string[] } {
  const m = readArtifactManifest(dir);
  return { command: process.execPath, args: [...m.entrypoint.nodeFlags, join(dir, m.entrypoint.main), dir] };
}
