import { existsSync, readdirSync } from 'node:fs';
import { readLimits, readTextBounded, type DatasetReadLimits } from './read.js';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CvoptError, expectFileKind, sniffFileKind } from '@cvopt/core';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { isDirectory, isFile, isImageFile, labelPathFor, listFilesRecursive } from './files.js';
import { problem, type Problem } from './problem.js';

export type SplitName = 'train' | 'val' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test'];

export interface ImageEntry {
  /** Absolute path of the image. */
  image: string;
  /** Absolute path of its label file; it may not exist (a background image). */
  label: string;
}

export interface DetectionDataset {
  /** The dataset root (`path` in data.yaml, resolved against the yaml's directory). */
  root: string;
  yamlPath: string;
  names: string[];
  splits: Partial<Record<SplitName, ImageEntry[]>>;
}

/** Where a split's images came from; the checker looks for orphan labels beside these directories. */
export interface SplitSource {
  split: SplitName;
  kind: 'dir' | 'list';
  path: string;
}

export interface ResolvedDetectionDataset {
  /** Present unless the yaml itself could not be used. */
  dataset?: DetectionDataset;
  sources: SplitSource[];
  problems: Problem[];
}

/** The data.yaml a path names: the file itself, or `data.yaml` (else the only *.yaml) in a directory. */
export function findDataYaml(path: string): string {
  const abs = resolve(path);
  if (!existsSync(abs)) {
    throw new CvoptError('NOT_FOUND', `the dataset path ${abs} does not exist`, { where: { file: abs }, hint: 'pass a data.yaml file or the directory that holds it' });
  }
  if (!isDirectory(abs)) return abs;
  const preferred = join(abs, 'data.yaml');
  if (isFile(preferred)) return preferred;
  const yamls = readdirSync(abs).filter((n) => /\.ya?ml$/i.test(n));
  if (yamls.length === 1) return join(abs, yamls[0] as string);
  throw new CvoptError('DATASET_INVALID', yamls.length ? `${abs} holds several yaml files (${yamls.join(', ')}) and no data.yaml` : `${abs} holds no data.yaml`, {
    where: { file: abs },
    hint: 'pass the data.yaml file itself, or write one with path, train, val and names',
  });
}

/**
 * Read a detection dataset with Ultralytics data.yaml semantics, collecting every problem instead of throwing:
 * `path` is the root (relative to the yaml's directory; default that directory); `train`/`val`/`test` are each a
 * directory (searched recursively), a .txt list of image paths, or a list of those; relative entries resolve
 * against the root, except `./x` lines in a list file, which resolve against the list's directory.
 */
export function resolveDetectionDataset(path: string, limits: Partial<DatasetReadLimits> = {}): ResolvedDetectionDataset {
  const lim = readLimits(limits);
  const yamlPath = findDataYaml(path);
  const problems: Problem[] = [];
  const sources: SplitSource[] = [];
  const yamlDir = dirname(yamlPath);
  const read = readTextBounded(yamlPath, lim.yamlBytes);
  if (!read.ok) {
    problems.push(problem('error', 'FILE_UNREADABLE', yamlPath, `the dataset yaml ${read.message}`, 'data.yaml must be a regular text file (path, train, val, names)'));
    return { sources, problems };
  }
  expectFileKind(yamlPath, ['text', 'empty'], 'a data.yaml', { code: 'DATASET_INVALID', hint: 'a data.yaml is a YAML text file with path, train, val and names' });
  const text = read.text;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  const lineAt = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);

  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      const pos = err.linePos?.[0];
      const what = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      problems.push(problem('error', 'YAML_SYNTAX', yamlPath, `bad YAML: ${what}${pos ? ` (column ${pos.col})` : ''}`, 'fix the YAML syntax (indentation with spaces, colons, quotes, brackets)', pos?.line));
    }
    return { sources, problems };
  }
  if (!isMap(doc.contents)) {
    problems.push(problem('error', 'YAML_FIELD', yamlPath, 'data.yaml must be a mapping with path, train, val and names', 'write keys such as "train: images/train"', 1));
    return { sources, problems };
  }
  const keyLine = (key: string) => lineOfKey(doc, key, lineAt);
  const fieldError = (key: string, message: string, hint: string, node?: YamlNode | null) =>
    problems.push(problem('error', 'YAML_FIELD', yamlPath, message, hint, lineAt(node?.range?.[0]) ?? keyLine(key)));

  // root
  let root = yamlDir;
  const pathNode = doc.get('path', true) as YamlNode | undefined;
  if (pathNode !== undefined && pathNode !== null) {
    const v = isScalar(pathNode) ? pathNode.value : undefined;
    if (typeof v !== 'string' || v.trim() === '') {
      if (v !== null) fieldError('path', 'path must be a directory name', 'set path to the dataset root, e.g. "path: ." or remove it', pathNode);
    } else {
      root = isAbsolute(v) ? v : resolve(yamlDir, v);
      if (!isDirectory(root)) {
        problems.push(problem('error', 'PATH_MISSING', yamlPath, `the dataset root ${root} (path: ${v}) is not a directory`, 'path is resolved against the directory of data.yaml; fix it or remove it', lineAt(pathNode.range?.[0])));
      }
    }
  }

  const names = readNames(doc, yamlPath, lineAt, problems);

  const splits: DetectionDataset['splits'] = {};
  for (const split of SPLIT_NAMES) {
    const node = doc.get(split, true) as YamlNode | undefined | null;
    if (node === undefined || node === null || (isScalar(node) && (node.value === null || node.value === ''))) continue;
    const values: { value: unknown; line: number | undefined }[] = isSeq(node)
      ? node.items.map((item) => ({ value: isScalar(item) ? item.value : undefined, line: lineAt((item as YamlNode).range?.[0]) }))
      : [{ value: isScalar(node) ? node.value : undefined, line: lineAt(node.range?.[0]) }];
    const entries: ImageEntry[] = [];
    for (const { value, line } of values) {
      if (typeof value !== 'string' || value.trim() === '') {
        problems.push(problem('error', 'YAML_FIELD', yamlPath, `${split} must be a directory, a .txt list of images, or a list of those`, `e.g. "${split}: images/${split}"`, line));
        continue;
      }
      const p = isAbsolute(value) ? value : resolve(root, value);
      if (isDirectory(p)) {
        sources.push({ split, kind: 'dir', path: p });
        for (const f of listFilesRecursive(p)) if (isImageFile(f)) entries.push({ image: f, label: labelPathFor(f) });
      } else if (existsSync(p) && p.toLowerCase().endsWith('.txt')) {
        // not only regular files: readImageList says what a pipe or device is instead of calling it missing
        sources.push({ split, kind: 'list', path: p });
        for (const e of readImageList(p, root, problems, lim.listBytes)) entries.push(e);
      } else {
        problems.push(problem('error', 'SPLIT_MISSING', yamlPath, `${split}: ${value} does not exist (looked for ${p})`, `create it, or point ${split} at an existing directory or .txt list relative to ${root}`, line));
        continue;
      }
    }
    // a split whose every source is missing was reported above; do not also call it empty
    if (sources.some((s) => s.split === split)) splits[split] = dedupe(entries);
  }
  if (!splits.train && !splits.val) {
    problems.push(problem('error', 'SPLIT_MISSING', yamlPath, 'data.yaml names neither a train nor a val split', 'add "train: images/train" and "val: images/val" (relative to path)', 1));
  } else {
    for (const split of ['train', 'val'] as const) {
      if (!splits[split] && doc.get(split) === undefined) {
        problems.push(problem('warning', 'SPLIT_MISSING', yamlPath, `data.yaml has no ${split} split`, `add "${split}: images/${split}" if you mean to ${split === 'train' ? 'train' : 'validate'} on this dataset`));
      }
    }
  }
  for (const split of SPLIT_NAMES) {
    const list = splits[split];
    if (list && list.length === 0) {
      problems.push(problem('error', 'SPLIT_EMPTY', yamlPath, `the ${split} split holds no images (${IMAGE_EXT_TEXT})`, 'put images there or fix the path', keyLine(split)));
    }
  }
  const dataset = names ? { root, yamlPath, names, splits } : undefined;
  return dataset ? { dataset, sources, problems } : { sources, problems };
}

const IMAGE_EXT_TEXT = 'jpg, jpeg, png, bmp or webp';

/**
 * Load a detection dataset for use (training, evaluation). Throws DATASET_INVALID naming every error when the
 * yaml or its splits are unusable; label contents are not checked here (see checkDataset).
 */
export function loadDetectionDataset(path: string): DetectionDataset {
  const { dataset, problems } = resolveDetectionDataset(path);
  const errors = problems.filter((p) => p.severity === 'error');
  if (dataset && errors.length === 0) return dataset;
  const first = errors[0];
  const list = errors.map((p) => (p.line !== undefined ? `${p.file}:${p.line}: ${p.message}` : `${p.file}: ${p.message}`)).join('; ');
  throw new CvoptError('DATASET_INVALID', `the dataset cannot be loaded: ${list}`, {
    where: first ? (first.line !== undefined ? { file: first.file, line: first.line } : { file: first.file }) : {},
    hint: first ? first.hint : 'run `cvopt dataset check` for a full report',
    details: { problems: errors },
  });
}

function readNames(
  doc: Document,
  yamlPath: string,
  lineAt: (offset: number | undefined) => number | undefined,
  problems: Problem[],
): string[] | undefined {
  const namesNode = doc.get('names', true) as YamlNode | undefined;
  const ncNode = doc.get('nc', true) as YamlNode | undefined;
  const nc = ncNode && isScalar(ncNode) ? ncNode.value : undefined;
  const ncLine = lineAt(ncNode?.range?.[0]);
  if (ncNode !== undefined && (typeof nc !== 'number' || !Number.isInteger(nc) || nc < 1)) {
    problems.push(problem('error', 'YAML_FIELD', yamlPath, `nc must be a positive integer, found ${JSON.stringify(nc ?? null)}`, 'set nc to the number of classes or remove it', ncLine));
  }
  let names: string[] | undefined;
  if (namesNode === undefined || namesNode === null) {
    if (typeof nc === 'number' && Number.isInteger(nc) && nc > 0) {
      names = Array.from({ length: nc }, (_, i) => `class${i}`);
      problems.push(problem('warning', 'NAMES_MISSING', yamlPath, `no names: classes are called class0..class${nc - 1}`, 'add names: [...] with one name per class', ncLine));
      return names;
    }
    problems.push(problem('error', 'NAMES_MISSING', yamlPath, 'data.yaml has no names', 'add names as a list ("names: [cat, dog]") or a map ("names: {0: cat, 1: dog}")', 1));
    return undefined;
  }
  const namesLine = lineOfKey(doc, 'names', lineAt);
  if (isSeq(namesNode)) {
    names = [];
    let ok = true;
    for (const item of namesNode.items) {
      const v = isScalar(item) ? item.value : undefined;
      if (typeof v !== 'string' && typeof v !== 'number') {
        problems.push(problem('error', 'NAMES_INVALID', yamlPath, 'every class name must be a plain string', 'write names as a list of strings', lineAt((item as YamlNode).range?.[0])));
        ok = false;
      } else names.push(String(v));
    }
    if (!ok) return undefined;
  } else if (isMap(namesNode)) {
    const byId = new Map<number, string>();
    let ok = true;
    for (const pair of namesNode.items) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      const value = isScalar(pair.value) ? pair.value.value : undefined;
      const id = typeof key === 'number' ? key : typeof key === 'string' && /^\d+$/.test(key) ? Number(key) : NaN;
      const line = lineAt((pair.key as YamlNode | null)?.range?.[0]);
      if (!Number.isInteger(id) || id < 0) {
        problems.push(problem('error', 'NAMES_INVALID', yamlPath, `names key ${JSON.stringify(key)} is not a class id (0, 1, 2, ...)`, 'key the names map by 0-based integer class ids', line));
        ok = false;
      } else if (typeof value !== 'string' && typeof value !== 'number') {
        problems.push(problem('error', 'NAMES_INVALID', yamlPath, `the name of class ${id} must be a plain string`, 'write "id: name"', line));
        ok = false;
      } else byId.set(id, String(value));
    }
    if (!ok) return undefined;
    const missing: number[] = [];
    for (let i = 0; i < byId.size; i++) if (!byId.has(i)) missing.push(i);
    if (missing.length > 0) {
      problems.push(problem('error', 'NAMES_INVALID', yamlPath, `names map ids must be 0..${byId.size - 1} without gaps; missing ${missing.slice(0, 10).join(', ')}`, 'renumber the classes from 0 without gaps (and relabel to match)', namesLine));
      return undefined;
    }
    names = Array.from({ length: byId.size }, (_, i) => byId.get(i) as string);
  } else {
    problems.push(problem('error', 'NAMES_INVALID', yamlPath, 'names must be a list or an {id: name} map', 'write "names: [cat, dog]" or "names: {0: cat, 1: dog}"', namesLine));
    return undefined;
  }
  if (names.length === 0) {
    problems.push(problem('error', 'NAMES_INVALID', yamlPath, 'names is empty', 'list at least one class', namesLine));
    return undefined;
  }
  if (typeof nc === 'number' && Number.isInteger(nc) && nc !== names.length) {
    problems.push(problem('error', 'NC_MISMATCH', yamlPath, `nc is ${nc} but names lists ${names.length} classes`, `set nc: ${names.length} or remove nc (names alone is enough)`, ncLine));
  }
  return names;
}

function lineOfKey(doc: Document, key: string, lineAt: (offset: number | undefined) => number | undefined): number | undefined {
  if (!isMap(doc.contents)) return undefined;
  for (const pair of doc.contents.items) {
    if (isScalar(pair.key) && pair.key.value === key) return lineAt(pair.key.range?.[0]);
  }
  return undefined;
}

function readImageList(listPath: string, root: string, problems: Problem[], maxBytes: number): ImageEntry[] {
  const out: ImageEntry[] = [];
  const listDir = dirname(listPath);
  const read = readTextBounded(listPath, maxBytes);
  if (!read.ok) {
    problems.push(problem('error', 'FILE_UNREADABLE', listPath, `the image list ${read.message}`, 'a split list is a regular text file with one image path per line'));
    return out;
  }
  read.text
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const entry = raw.trim();
      if (!entry || entry.startsWith('#')) return;
      const image = isAbsolute(entry) ? entry : entry.startsWith('./') ? resolve(listDir, entry) : resolve(root, entry);
      if (!isImageFile(image)) {
        problems.push(problem('warning', 'FILE_IGNORED', listPath, `${entry} is not an image (${IMAGE_EXT_TEXT}); ignored`, 'list only image files', i + 1));
      } else if (!isFile(image)) {
        problems.push(problem('error', 'LIST_ENTRY_MISSING', listPath, `listed image ${entry} does not exist (looked for ${image})`, `remove the line or fix the path (relative to ${root})`, i + 1));
      } else out.push({ image, label: labelPathFor(image) });
    });
  return out;
}

function dedupe(entries: ImageEntry[]): ImageEntry[] {
  const seen = new Set<string>();
  return entries.filter((e) => (seen.has(e.image) ? false : (seen.add(e.image), true)));
}

/** A data.yaml (or a directory holding one) is a detection set; anything else a folder-per-class set. */
export function datasetTaskOf(data: string): 'detect' | 'classify' {
  if (!existsSync(data)) {
    throw new CvoptError('NOT_FOUND', `the dataset path ${data} does not exist`, {
      where: { file: data },
      hint: 'pass a data.yaml (detection) or a folder-per-class directory (classification)',
    });
  }
  // A file must be a data.yaml; anything else (an image, a model, an archive) is named for what it is.
  const kind = sniffFileKind(data);
  if (kind !== 'directory') {
    expectFileKind(data, ['text'], 'a data.yaml (detection) or a dataset folder', {
      code: 'DATASET_INVALID',
      hint: 'pass a data.yaml for detection, or the folder holding one; for classification, a folder of class folders',
    });
    return 'detect';
  }
  try {
    findDataYaml(data);
    return 'detect';
  } catch {
    return 'classify';
  }
}
