import { existsSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { CvoptError, ModelManifestSchema, parseWith, readRegularFile, type ModelManifest } from '@cvopt/core';

/** model.json is a few KB (class names included); past this it is not one. */
export const MAX_MANIFEST_BYTES = 16 << 20;

/** Where a model's manifest lives: `<name>.json` beside `<name>.onnx` first, else `model.json` in the same folder. */
export function manifestPathFor(modelPath: string): string[] {
  const dir = dirname(modelPath);
  const stem = basename(modelPath, extname(modelPath));
  const own = join(dir, `${stem}.json`);
  const shared = join(dir, 'model.json');
  return own === shared ? [shared] : [own, shared];
}

/** Load and validate the manifest beside an ONNX file. */
export function readManifest(modelPath: string): ModelManifest {
  if (!existsSync(modelPath)) {
    throw new CvoptError('MODEL_INVALID', `model file ${modelPath} does not exist`, {
      where: { file: modelPath },
      hint: 'check the path; export a model with `cvopt export MODEL.pt --out model.onnx`',
    });
  }
  const candidates = manifestPathFor(modelPath);
  const file = candidates.find((p) => existsSync(p));
  if (!file) {
    throw new CvoptError('MANIFEST_INVALID', `no manifest beside ${modelPath} (looked for ${candidates.join(', ')})`, {
      where: { file: candidates[0] ?? modelPath },
      hint: '`cvopt export` writes model.json beside the ONNX file; for a foreign ONNX model write one by hand (see packages/core manifest.ts)',
    });
  }
  // model.json is a few KB; a FIFO, device or huge file here is a mistake or an attack, not a manifest
  const read = readRegularFile(file, MAX_MANIFEST_BYTES);
  if (!read.ok) {
    throw new CvoptError('MANIFEST_INVALID', `${file} ${read.message}`, { where: { file }, hint: 'model.json must be a regular JSON file beside the model' });
  }
  const text = read.bytes.toString('utf8');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const pos = jsonErrorOffset(text, message);
    const line = pos === undefined ? undefined : text.slice(0, pos).split('\n').length;
    throw new CvoptError('MANIFEST_INVALID', `${file} is not valid JSON: ${message}`, {
      where: line === undefined ? { file } : { file, line },
      hint: 'fix the JSON syntax at that line',
    });
  }
  return parseWith(ModelManifestSchema, data, { what: 'model manifest', file, code: 'MANIFEST_INVALID' });
}

/**
 * Where JSON.parse stopped. V8 gives "at position N" for most errors, but for an unexpected token only the token
 * and a snippet around it: 10 characters of context before the token when the snippet is cut ("...").
 */
function jsonErrorOffset(text: string, message: string): number | undefined {
  const pos = /position (\d+)/.exec(message);
  if (pos) return Number(pos[1]);
  const tok = /Unexpected token '(.)', (\.\.\.)?"([\s\S]*?)"(?:\.\.\.)? is not valid JSON/.exec(message);
  if (!tok) return undefined;
  const [, token, cut, snippet] = tok;
  if (cut && snippet) {
    const at = text.indexOf(snippet);
    return at >= 0 ? at + 10 : undefined;
  }
  // Whole text shown: the first occurrence of the token outside a string is where parsing stopped.
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === token) return i;
  }
  return undefined;
}
