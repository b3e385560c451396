import { constants as bufferConstants } from 'node:buffer';
import { realpathSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve, relative, sep } from 'node:path';
import { CvoptError, FILE_KIND_NAMES, readRegularFile, sniffBytes } from '@cvopt/core';
import { decodeModel, encodeModel, type GraphProto, type ModelProto, type TensorProto } from './model.js';

export interface ExternalDataFile {
  location: string;
  tensors: number;
  bytes: number;
}

export interface LoadedOnnx {
  path: string;
  fileBytes: number;
  model: ModelProto;
  /** External data files the model referenced; their bytes are now inline in each tensor's rawData. */
  externalData: ExternalDataFile[];
}

/** Protobuf caps a message at 2 GiB; larger models need external data, which cvopt does not write. */
const MAX_PROTO_BYTES = 2 ** 31 - 1;

function notFound(path: string): never {
  throw new CvoptError('NOT_FOUND', `ONNX file ${path} does not exist`, { where: { file: path }, hint: 'check the path' });
}

/** A model or external-data file read whole: a regular file only (never a FIFO, device or folder), bounded. */
function readModelFile(path: string, what: string, maxBytes: number, opts: { field?: string; follow?: boolean } = {}): Buffer {
  const r = readRegularFile(path, maxBytes, { follow: opts.follow ?? false });
  if (r.ok) return r.bytes;
  if (r.reason === 'missing') notFound(path);
  throw new CvoptError('MODEL_INVALID', `${what} ${path} ${r.message}`, {
    where: { file: path, ...(opts.field ? { field: opts.field } : {}) },
    hint: r.reason === 'too-large' ? 'the file is larger than any model cvopt reads' : 'pass the file itself, not a pipe, device or folder',
  });
}

/** `location` resolved under `realBase` with every symlink followed; undefined when that lands outside it. */
function insideFolder(realBase: string, location: string): string | undefined {
  if (!location || isAbsolute(location) || location.includes('\0')) return undefined;
  let real: string;
  try {
    real = realpathSync(resolve(realBase, location));
  } catch {
    // missing: judge the lexical path, so the error can say "missing" rather than "outside"
    real = resolve(realBase, location);
  }
  const rel = relative(realBase, real);
  return rel && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel) ? real : undefined;
}

function* graphTensors(g: GraphProto): Generator<TensorProto> {
  yield* g.initializer;
  for (const n of g.node)
    for (const a of n.attribute) {
      if (a.t) yield a.t;
      if (a.g) yield* graphTensors(a.g);
      for (const sub of a.graphs ?? []) yield* graphTensors(sub);
    }
}

/**
 * Read an ONNX file. External data (tensors with data_location = EXTERNAL) is loaded from the files beside the
 * model, so the returned model is self-contained; a missing or short external file is MODEL_INVALID naming it.
 */
export function readOnnx(path: string): LoadedOnnx {
  if (!existsSync(path)) notFound(path);
  // a symlink the user passed is followed (their choice); pipes and devices are refused
  const buf = readModelFile(path, 'ONNX file', MAX_PROTO_BYTES, { follow: true });
  const kind = sniffBytes(buf.subarray(0, 4096));
  if (kind !== 'onnx' && kind !== 'binary' && kind !== 'empty') {
    throw new CvoptError('MODEL_INVALID', `${path} is ${FILE_KIND_NAMES[kind]}, not an ONNX model`, { where: { file: path }, hint: 'pass a .onnx file (cvopt export writes one from a .pt checkpoint)' });
  }
  if (buf.length === 0) {
    throw new CvoptError('MODEL_INVALID', `${path} is empty (0 bytes at byte 0)`, { where: { file: path }, details: { offset: 0 }, hint: 'export or download the model again' });
  }
  const model = decodeModel(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), path);
  const files = new Map<string, { data: Buffer; info: ExternalDataFile }>();
  // External data must stay inside the model's real folder: a symlink inside it may not lead out.
  const base = realpathSync(dirname(resolve(path)));
  for (const t of graphTensors(model.graph)) {
    if (t.dataLocation !== 1) continue;
    const kv = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
    const location = kv.get('location');
    const field = `initializer ${t.name ?? ''}.external_data.location`;
    const full = location === undefined ? undefined : insideFolder(base, location);
    if (location === undefined || full === undefined) {
      throw new CvoptError('MODEL_INVALID', `tensor "${t.name ?? ''}" has external data location "${location ?? ''}", which must be a relative path to a file inside the model's folder (absolute paths, ../ and symlinks out are refused)`, {
        where: { file: path, field },
        hint: 'keep the .data file beside the .onnx file, as a real file',
      });
    }
    let entry = files.get(full);
    if (!entry) {
      if (!existsSync(full)) {
        throw new CvoptError('MODEL_INVALID', `external data file ${location} (for tensor "${t.name ?? ''}") is missing beside ${path}`, {
          where: { file: full },
          hint: 'copy the .data file next to the .onnx file, or re-export with the weights inside the model',
        });
      }
      entry = { data: readModelFile(full, 'external data file', bufferConstants.MAX_LENGTH, { field }), info: { location, tensors: 0, bytes: 0 } };
      files.set(full, entry);
    }
    const offset = Number(kv.get('offset') ?? 0);
    const length = kv.has('length') ? Number(kv.get('length')) : entry.data.length - offset;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new CvoptError('MODEL_INVALID', `external data for tensor "${t.name ?? ''}" has offset "${kv.get('offset') ?? ''}" and length "${kv.get('length') ?? ''}", which are not byte counts`, {
        where: { file: path, field: `initializer ${t.name ?? ''}.external_data` },
      });
    }
    if (offset + length > entry.data.length) {
      throw new CvoptError('MODEL_INVALID', `external data for tensor "${t.name ?? ''}" needs bytes ${offset}..${offset + length} of ${location}, which has ${entry.data.length}`, {
        where: { file: resolve(base, location) },
        hint: 'the .data file is truncated or belongs to another model',
      });
    }
    t.rawData = new Uint8Array(entry.data.buffer, entry.data.byteOffset + offset, length);
    delete t.externalData;
    delete t.dataLocation;
    entry.info.tensors++;
    entry.info.bytes += length;
  }
  return { path, fileBytes: buf.length, model, externalData: [...files.values()].map((f) => f.info) };
}


export function encodeOnnx(model: ModelProto): Uint8Array {
  const bytes = encodeModel(model);
  if (bytes.length > MAX_PROTO_BYTES) {
    throw new CvoptError('MODEL_INVALID', `the model encodes to ${bytes.length} bytes, over protobuf's 2 GiB limit`, {
      hint: 'models this large need external data files, which cvopt does not write yet',
    });
  }
  return bytes;
}

export function writeOnnx(model: ModelProto, path: string): void {
  writeFileSync(path, encodeOnnx(model));
}
