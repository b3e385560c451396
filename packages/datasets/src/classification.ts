import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CvoptError } from '@cvopt/core';
import { SPLIT_NAMES, type SplitName } from './detection.js';
import { isDirectory, isImageFile, listFilesRecursive } from './files.js';
import { problem, type Problem } from './problem.js';

export interface ClassificationEntry {
  /** Absolute path of the image. */
  image: string;
  classId: number;
}

export interface ClassificationDataset {
  root: string;
  /** Class folder names, sorted (so ids match torchvision's ImageFolder). */
  names: string[];
  splits: Partial<Record<SplitName, ClassificationEntry[]>>;
}

export interface ResolvedClassificationDataset {
  dataset?: ClassificationDataset;
  problems: Problem[];
}

/**
 * Read a folder-per-class dataset, collecting problems: `root/{train,val,test}/<class>/…` or, when the root holds
 * no split folders, `root/<class>/…` as a val split only. Images are searched recursively inside each class folder.
 */
export function resolveClassificationDataset(path: string): ResolvedClassificationDataset {
  const root = resolve(path);
  if (!existsSync(root)) {
    throw new CvoptError('NOT_FOUND', `the dataset path ${root} does not exist`, { where: { file: root }, hint: 'pass the folder that holds train/ and val/ (or one folder per class)' });
  }
  const problems: Problem[] = [];
  if (!isDirectory(root)) {
    problems.push(problem('error', 'LAYOUT_UNKNOWN', root, 'a classification dataset is a directory', 'pass the folder that holds train/<class>/ and val/<class>/'));
    return { problems };
  }
  const splitDirs = SPLIT_NAMES.filter((s) => isDirectory(join(root, s)));
  const layout: [SplitName, string][] = splitDirs.length > 0 ? splitDirs.map((s) => [s, join(root, s)]) : [['val', root]];

  const classesBySplit = new Map<SplitName, string[]>();
  for (const [split, dir] of layout) {
    const classes: string[] = [];
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (entry.isDirectory()) classes.push(entry.name);
      else if (isImageFile(entry.name)) {
        problems.push(problem('warning', 'FILE_IGNORED', join(dir, entry.name), 'a file outside any class folder is ignored', `move it into ${dir}/<class>/`));
      }
    }
    classesBySplit.set(split, classes);
  }
  const names = [...new Set([...classesBySplit.values()].flat())].sort();
  if (names.length === 0) {
    problems.push(problem('error', 'LAYOUT_UNKNOWN', root, 'no class folders found', 'lay the images out as train/<class>/*.jpg and val/<class>/*.jpg'));
    return { problems };
  }
  if (names.length === 1) {
    problems.push(problem('warning', 'LAYOUT_UNKNOWN', root, `only one class folder (${names[0]}): a classifier needs at least two`, 'add a folder per class'));
  }
  const splits: ClassificationDataset['splits'] = {};
  for (const [split, dir] of layout) {
    const present = classesBySplit.get(split) ?? [];
    const missing = names.filter((n) => !present.includes(n));
    if (missing.length > 0 && layout.length > 1) {
      problems.push(problem('warning', 'CLASS_DIRS_DIFFER', dir, `${split} has no folder for ${missing.join(', ')}`, `add ${missing.map((m) => `${split}/${m}/`).join(', ')} with images of those classes`));
    }
    const entries: ClassificationEntry[] = [];
    for (const name of present) {
      const classDir = join(dir, name);
      const images = listFilesRecursive(classDir).filter(isImageFile);
      if (images.length === 0) {
        problems.push(problem('warning', 'CLASS_DIR_EMPTY', classDir, `class folder ${split}/${name} holds no images (jpg, jpeg, png, bmp or webp)`, 'add images or remove the folder'));
      }
      const classId = names.indexOf(name);
      for (const image of images) entries.push({ image, classId });
    }
    splits[split] = entries;
  }
  return { dataset: { root, names, splits }, problems };
}

/** Load a folder-per-class dataset for use; throws DATASET_INVALID naming every error. */
export function loadClassificationDataset(path: string): ClassificationDataset {
  const { dataset, problems } = resolveClassificationDataset(path);
  const errors = problems.filter((p) => p.severity === 'error');
  if (dataset && errors.length === 0) return dataset;
  const first = errors[0];
  throw new CvoptError('DATASET_INVALID', `the dataset cannot be loaded: ${errors.map((p) => `${p.file}: ${p.message}`).join('; ')}`, {
    where: first ? { file: first.file } : {},
    hint: first?.hint ?? 'run `cvopt dataset check` for a full report',
    details: { problems: errors },
  });
}
