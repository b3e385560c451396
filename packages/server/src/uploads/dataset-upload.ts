import { existsSync, readdirSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { CvoptError } from '@cvopt/core';
import { checkDataset, resolveDetectionDataset, type CheckReport } from '@cvopt/datasets';

/** The dataset root inside an extracted upload: the top folder itself, or its single sub-folder. */
export function findDatasetRoot(dir: string): string {
  const entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.name !== '__MACOSX' && !e.name.startsWith('.'));
  if (existsSync(join(dir, 'data.yaml')) || entries.some((e) => e.isFile() && /\.ya?ml$/.test(e.name))) return dir;
  const only = entries.length === 1 && entries[0]!.isDirectory() ? join(dir, entries[0]!.name) : undefined;
  return only ?? dir;
}

const inside = (root: string, p: string) => {
  const abs = resolve(p);
  return abs === root || abs.startsWith(root + sep);
};

/**
 * A data.yaml may point anywhere (`path: /etc`, `train: ../../x`, list files with absolute paths): before the
 * checker reads a single image, every root, split source, image and label must resolve inside the upload area.
 */
export function confineDetectionDataset(root: string, area: string): void {
  if (!existsSync(join(root, 'data.yaml')) && !readdirSync(root).some((n) => /\.ya?ml$/.test(n))) return;
  const r = resolveDetectionDataset(root);
  const outside: string[] = [];
  if (r.dataset && !inside(area, r.dataset.root)) outside.push(`path → ${r.dataset.root}`);
  for (const s of r.sources) if (!inside(area, s.path)) outside.push(`${s.split} → ${s.path}`);
  for (const list of Object.values(r.dataset?.splits ?? {})) {
    for (const e of list ?? []) {
      if (!inside(area, e.image)) outside.push(e.image);
      if (!inside(area, e.label)) outside.push(e.label);
      if (outside.length > 5) break;
    }
  }
  if (outside.length) {
    throw new CvoptError('ARCHIVE_UNSAFE', `data.yaml points outside the uploaded dataset: ${outside.slice(0, 5).join(', ')}`, {
      where: { file: 'data.yaml' },
      hint: 'use paths relative to data.yaml that stay inside the archive',
    });
  }
}

/** Run `cvopt dataset check`'s validator; paths in the kept report are relative to the dataset root. */
export async function validateDataset(root: string, task?: 'detect' | 'classify'): Promise<CheckReport> {
  const report = await checkDataset(root, task ? { task } : {});
  const rel = (p: string) => relative(root, p) || '.';
  return { ...report, root: '.', problems: report.problems.map((p) => ({ ...p, file: rel(p.file) })) };
}
