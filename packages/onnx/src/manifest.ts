import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { CvoptError, ModelManifestSchema, parseWith, type ModelManifest, type OutputFormat, type Preprocess, type Task } from '@cvopt/core';
import { COCO80 } from './coco.js';
import { inspectOnnx, opsetVersion, DEFAULT_DOMAIN, type Dim, type OnnxInspection, type TensorInfo } from './inspect.js';
import { readOnnx, type LoadedOnnx } from './io.js';

/** What a user may state when the file cannot tell; each has the CLI flag that sets it. */
export interface ManifestOverrides {
  name?: string;
  task?: Task;
  format?: OutputFormat;
  classNames?: string[];
  /** [height, width] */
  size?: [number, number];
  channelOrder?: 'RGB' | 'BGR';
  scale?: number;
  mean?: [number, number, number];
  std?: [number, number, number];
  resize?: Preprocess['resize'];
  padValue?: number;
  padPosition?: Preprocess['padPosition'];
  scoresActivated?: boolean;
  strides?: number[];
}

export const OVERRIDE_FLAGS: Record<string, string> = {
  task: '--task detect|classify',
  format: '--format yolov8|yolox|logits|probabilities',
  classNames: '--class-names FILE (one name per line) or a data.yaml with names',
  size: '--imgsz N or --imgsz H,W',
  channelOrder: '--channel-order RGB|BGR',
  input: '(the model needs a single NCHW image input with 3 channels)',
};

export interface InferredManifest {
  manifest: ModelManifest;
  /** Each value that was assumed from a convention rather than read from the file. */
  notes: string[];
}

const YOLOX_STRIDES = [8, 16, 32];

/** Parse Ultralytics' metadata `names`, a Python dict literal: {0: 'person', 1: "bicycle"}. */
export function parsePythonNames(s: string): string[] | undefined {
  const re = /(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g;
  const out: string[] = [];
  for (const m of s.matchAll(re)) out[Number(m[1])] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
  if (out.length === 0) return undefined;
  for (let i = 0; i < out.length; i++) if (out[i] === undefined) return undefined;
  return out;
}

function parseImgsz(s: string | undefined): [number, number] | undefined {
  if (!s) return undefined;
  const nums = s.match(/\d+/g)?.map(Number) ?? [];
  if (nums.length === 1) return [nums[0] as number, nums[0] as number];
  if (nums.length >= 2) return [nums[0] as number, nums[1] as number];
  return undefined;
}

const num = (d: Dim | undefined): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);

function yoloxAnchors(h: number, w: number, strides: number[]): number {
  return strides.reduce((a, s) => a + Math.ceil(h / s) * Math.ceil(w / s), 0);
}

/** Decide the output format and class count from the output shape, given the input size when known. */
function guessOutput(out: TensorInfo, size: [number, number] | undefined): { task: Task; format: OutputFormat; nc?: number } | undefined {
  const s = out.shape;
  if (!s) return undefined;
  if (s.length === 2) {
    const c = num(s[1]);
    return c !== undefined ? { task: 'classify', format: 'logits', nc: c } : { task: 'classify', format: 'logits' };
  }
  if (s.length !== 3) return undefined;
  const a = num(s[1]);
  const b = num(s[2]);
  if (size) {
    const n = yoloxAnchors(size[0], size[1], YOLOX_STRIDES);
    if (a === n && b !== undefined && b > 5) return { task: 'detect', format: 'yolox', nc: b - 5 };
    // Both families predict one row per cell of the stride 8/16/32 grids; they differ in which axis holds it.
    if (b === n && a !== undefined && a > 4) return { task: 'detect', format: 'yolov8', nc: a - 4 };
  }
  // Without the input size: yolov8 puts the few channels first, yolox the many anchors first.
  if (a !== undefined && b !== undefined) {
    if (a < b && a > 4) return { task: 'detect', format: 'yolov8', nc: a - 4 };
    if (a > b && b > 5) return { task: 'detect', format: 'yolox', nc: b - 5 };
  }
  return undefined;
}

/**
 * Infer model.json for an ONNX file from its shapes, operators and metadata (Ultralytics' names/stride/imgsz),
 * filling preprocessing from the convention of the output format. Overrides win over anything inferred. When a
 * field cannot be inferred, MANIFEST_INVALID lists every missing field with the flag that sets it.
 */
export function inferManifestWithNotes(pathOrLoaded: string | LoadedOnnx, overrides: ManifestOverrides = {}): InferredManifest {
  const loaded = typeof pathOrLoaded === 'string' ? readOnnx(pathOrLoaded) : pathOrLoaded;
  const info: OnnxInspection = inspectOnnx(loaded);
  const meta = info.metadata;
  const notes: string[] = [];
  const missing: string[] = [];

  const input = info.inputs[0];
  const ishape = input?.shape;
  if (!input || !ishape || ishape.length !== 4 || (num(ishape[1]) !== undefined && num(ishape[1]) !== 3)) {
    throw new CvoptError('MANIFEST_INVALID', `cannot use ${loaded.path} as an image model: its first input is ${input ? `${input.name} [${(ishape ?? []).join(',')}]` : 'missing'}, not an NCHW tensor with 3 channels`, {
      where: { file: loaded.path, field: 'graph.input[0]' },
      hint: 'cvopt serves models with one image input shaped [N,3,H,W]',
    });
  }
  if (info.inputs.length > 1) notes.push(`the model has ${info.inputs.length} inputs; cvopt feeds only the first (${input.name})`);

  let size: [number, number] | undefined = overrides.size;
  if (!size) {
    const h = num(ishape[2]);
    const w = num(ishape[3]);
    if (h && w) size = [h, w];
    else {
      size = parseImgsz(meta.imgsz);
      if (size) notes.push(`input size ${size.join('x')} from metadata imgsz (the input is dynamic)`);
    }
  }

  const output = info.outputs[0];
  if (!output) throw new CvoptError('MANIFEST_INVALID', `${loaded.path} has no graph outputs`, { where: { file: loaded.path, field: 'graph.output' } });
  if (info.outputs.length > 1) notes.push(`the model has ${info.outputs.length} outputs; cvopt reads only the first (${output.name})`);
  const guess = guessOutput(output, size);
  const metaTask = meta.task === 'detect' || meta.task === 'classify' ? meta.task : undefined;
  const task: Task | undefined = overrides.task ?? metaTask ?? guess?.task;
  let format: OutputFormat | undefined = overrides.format ?? (guess && guess.task === task ? guess.format : undefined);
  if (!format && task === 'classify') format = 'logits';
  if (format === 'logits' && !overrides.format && loaded.model.graph.node.some((n) => n.opType === 'Softmax' && n.output.includes(output.name))) format = 'probabilities';
  if (!task) missing.push('task');
  if (!format) missing.push('format');
  if (!size) missing.push('size');

  let classNames = overrides.classNames ?? (meta.names ? parsePythonNames(meta.names) : undefined);
  const nc = guess?.nc;
  if (!classNames && nc !== undefined) {
    if (nc === 80 && task === 'detect') {
      classNames = [...COCO80];
      notes.push('80 classes and no names in the file: assumed the COCO-80 class names');
    } else if (task === 'classify' && nc === 1000) {
      classNames = Array.from({ length: 1000 }, (_, i) => `imagenet_${i}`);
      notes.push('1000 classes and no names in the file: assumed ImageNet-1k order, named imagenet_<index>');
    }
  }
  if (!classNames) missing.push('classNames');
  else if (nc !== undefined && classNames.length !== nc) {
    throw new CvoptError('MANIFEST_INVALID', `${classNames.length} class names were given but the output ${output.name} [${(output.shape ?? []).join(',')}] has ${nc} classes`, {
      where: { file: loaded.path, field: 'classNames' },
      hint: `give exactly ${nc} names with ${OVERRIDE_FLAGS.classNames}`,
    });
  }

  if (missing.length) {
    throw new CvoptError('MANIFEST_INVALID', `cannot infer model.json for ${basename(loaded.path)}: ${missing.join(', ')} could not be read from the file`, {
      where: { file: loaded.path, field: missing[0] as string },
      details: { missing: missing.map((f) => ({ field: f, flag: OVERRIDE_FLAGS[f] })) },
      hint: `set them with ${missing.map((f) => OVERRIDE_FLAGS[f]).join(', ')}, or write a model.json beside the model`,
    });
  }

  // Conventions by family: Ultralytics takes RGB 0..1 centre-letterboxed; YOLOX BGR 0..255 padded at the
  // bottom-right; ImageNet classifiers RGB with ImageNet mean/std after a centre crop.
  const fmt = format as OutputFormat;
  const conv: Pick<Preprocess, 'resize' | 'scale' | 'mean' | 'std' | 'channelOrder' | 'padPosition' | 'padValue'> =
    fmt === 'yolox'
      ? { resize: 'letterbox', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'BGR', padPosition: 'top-left', padValue: 114 }
      : fmt === 'yolov8'
        ? { resize: 'letterbox', scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'RGB', padPosition: 'center', padValue: 114 }
        : { resize: 'center-crop', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channelOrder: 'RGB', padPosition: 'center', padValue: 0 };
  const convFields = (['channelOrder', 'scale', 'mean', 'std'] as const).filter((k) => overrides[k] === undefined);
  if (convFields.length) notes.push(`${convFields.join(', ')} follow the ${fmt} convention (${conv.channelOrder}, scale ${conv.scale === 1 ? '1 (0..255)' : '1/255'}${fmt === 'logits' || fmt === 'probabilities' ? ', ImageNet mean/std' : ''})`);
  const stride = Number(meta.stride) > 0 ? Number(meta.stride) : 32;

  const opset = opsetVersion(loaded.model, DEFAULT_DOMAIN) ?? 0;
  const sha = createHash('sha256').update(readFileSync(loaded.path)).digest('hex');
  const draft = {
    schemaVersion: 1,
    name: overrides.name ?? basename(loaded.path).replace(/\.onnx$/i, ''),
    task,
    input: { name: input.name, shape: ishape.map((d, i) => (typeof d === 'number' && d > 0 ? d : typeof d === 'string' ? d : ['batch', 'channels', 'height', 'width'][i])), layout: 'NCHW', dtype: input.dtype },
    preprocess: {
      resize: overrides.resize ?? conv.resize,
      size,
      padValue: overrides.padValue ?? conv.padValue,
      scale: overrides.scale ?? conv.scale,
      mean: overrides.mean ?? conv.mean,
      std: overrides.std ?? conv.std,
      channelOrder: overrides.channelOrder ?? conv.channelOrder,
      padPosition: overrides.padPosition ?? conv.padPosition,
      stride,
    },
    output: {
      name: output.name,
      format: fmt,
      shape: (output.shape ?? []).map((d, i) => (d === null ? `d${i}` : d)),
      scoresActivated: overrides.scoresActivated ?? true,
      ...(fmt === 'yolox' ? { strides: overrides.strides ?? YOLOX_STRIDES } : {}),
    },
    classNames,
    opset,
    precision: info.precision,
    provenance: { source: loaded.path, onnxSha256: sha, ...(meta.author ? { exportedBy: `${meta.author}${meta.version ? ` ${meta.version}` : ''}` } : {}) },
  };
  const manifest = parseWith(ModelManifestSchema, draft, { what: `the inferred model.json for ${loaded.path}`, file: loaded.path, code: 'MANIFEST_INVALID' });
  return { manifest, notes };
}

export function inferManifest(pathOrLoaded: string | LoadedOnnx, overrides: ManifestOverrides = {}): ModelManifest {
  return inferManifestWithNotes(pathOrLoaded, overrides).manifest;
}

export interface ManifestMismatch {
  field: string;
  manifest: unknown;
  model: unknown;
}

/** Check a model.json against its ONNX file: input/output names and static shapes, opset. Empty when they agree. */
export function verifyManifest(pathOrLoaded: string | LoadedOnnx, manifest: ModelManifest): ManifestMismatch[] {
  const loaded = typeof pathOrLoaded === 'string' ? readOnnx(pathOrLoaded) : pathOrLoaded;
  const info = inspectOnnx(loaded);
  const out: ManifestMismatch[] = [];
  const cmpShape = (field: string, declared: (number | string)[], actual: Dim[] | null) => {
    if (!actual) return;
    const bad = declared.length !== actual.length || declared.some((d, i) => typeof d === 'number' && typeof actual[i] === 'number' && d !== actual[i]);
    if (bad) out.push({ field, manifest: declared, model: actual });
  };
  const input = info.inputs.find((i) => i.name === manifest.input.name);
  if (!input) out.push({ field: 'input.name', manifest: manifest.input.name, model: info.inputs.map((i) => i.name) });
  else {
    cmpShape('input.shape', manifest.input.shape, input.shape);
    if (input.dtype !== manifest.input.dtype) out.push({ field: 'input.dtype', manifest: manifest.input.dtype, model: input.dtype });
  }
  const output = info.outputs.find((o) => o.name === manifest.output.name);
  if (!output) out.push({ field: 'output.name', manifest: manifest.output.name, model: info.outputs.map((o) => o.name) });
  else cmpShape('output.shape', manifest.output.shape, output.shape);
  const opset = opsetVersion(loaded.model, DEFAULT_DOMAIN);
  if (opset !== undefined && opset !== manifest.opset) out.push({ field: 'opset', manifest: manifest.opset, model: opset });
  return out;
}
