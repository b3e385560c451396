import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import mozjpegFactory from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';
import type { JpegHeader } from './jpeg-header.js';

/**
 * Small JPEGs decoded by mozjpeg compiled to WebAssembly (@jsquash/jpeg), on the calling thread. libvips' fixed
 * cost per call (thread-pool hop, pipeline set-up, a 0.28 ms callback on the main thread) dominates for small
 * images; the wasm decoder has none of it. Both are libjpeg-turbo lineage with the same defaults (ISLOW IDCT,
 * fancy upsampling), and for the files let through here their pixels are identical to sharp's, byte for byte.
 *
 * Largest image (width × height) decoded here. CPU per decode, wasm against sharp, measured on a busy 2-core AMD
 * EPYC: 160×160 0.44 / 1.29 ms, 224×224 0.85 / 1.46, 320×320 1.62 / 2.10, 480×360 2.16 / 2.29, 640×480 4.56 / 3.34:
 * wasm wins up to about 320×320.
 */
export const WASM_JPEG_MAX_PIXELS = 320 * 320;

/**
 * Largest file decoded here. The input is copied into the wasm heap, which never shrinks: a 160×160 image padded
 * with megabytes of metadata would otherwise grow it for the life of the process. A 320×320 JPEG at quality 100
 * is well under this.
 */
export const WASM_JPEG_MAX_BYTES = 1 << 20;

/** Decoded pixels, 4 bytes a pixel (R, G, B, 255), rows packed. */
export interface RgbaImage {
  data: Uint8Array;
  width: number;
  height: number;
}

// @types/node 20 leaves the WebAssembly global to lib.dom; the two entry points used here, module-local.
interface WasmModule {
  readonly wasmModule: unique symbol;
}
interface WasmInstance {
  exports: object;
}
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports: object) => WasmInstance;
};

/** What the emscripten module exposes: decode(bytes, applyExifOrientation) → RGBA, or a thrown non-Error on a fatal libjpeg error. */
interface MozJpegModule {
  decode(data: Uint8Array, applyOrientation: boolean): { data: Uint8ClampedArray; width: number; height: number } | null;
}
type MozJpegFactory = (opts: {
  noInitialRun: boolean;
  instantiateWasm: (imports: object, done: (instance: WasmInstance) => void) => object;
  print: (s: string) => void;
  printErr: (s: string) => void;
}) => Promise<MozJpegModule>;

// Read once at start-up: CVOPT_JPEG_WASM=0 sends every JPEG through libvips.
let enabled = !['0', 'false'].includes(process.env.CVOPT_JPEG_WASM ?? '');
let decodes = 0;
/** libjpeg's warnings ("Premature end of JPEG file", "Corrupt JPEG data: …") arrive here during a decode. */
const messages: string[] = [];
let compiled: Promise<WasmModule | undefined> | undefined;
let instance: Promise<MozJpegModule | undefined> | undefined;

/** Tests: force the fast path on or off (the environment variable is read once, at start-up). Returns the previous setting. */
export function setJpegWasm(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** Tests: how many images the wasm decoder has produced (fallbacks not counted). */
export function jpegWasmDecodes(): number {
  return decodes;
}

/**
 * True when the wasm decoder gives exactly what the libvips pipeline would: baseline or extended Huffman
 * (progressive files can be scan-count CPU bombs), 8-bit, grey or YCbCr with 4:4:4, 4:2:2 or 4:2:0 sampling, no
 * ICC profile (libvips converts to sRGB), no Adobe marker (which may declare RGB or inverted CMYK), upright, and
 * ending in EOI (libvips with failOn 'error' refuses a truncated file that libjpeg would pad silently).
 */
export function wasmJpegExact(h: JpegHeader, buf: Uint8Array): boolean {
  return (
    h.complete &&
    (h.sof === 0xc0 || h.sof === 0xc1) &&
    h.precision === 8 &&
    (h.components === 1 || (h.components === 3 && [0x11, 0x21, 0x22].includes(h.sampling[0]!) && h.sampling[1] === 0x11 && h.sampling[2] === 0x11)) &&
    !h.icc &&
    !h.adobe &&
    h.orientation === 1 &&
    buf[buf.length - 2] === 0xff &&
    buf[buf.length - 1] === 0xd9
  );
}

/** The fast path is on, the file is one the wasm decoder reads exactly, and small enough to be faster there. */
export function wasmJpegEligible(h: JpegHeader, buf: Uint8Array): boolean {
  return enabled && h.width * h.height <= WASM_JPEG_MAX_PIXELS && buf.length <= WASM_JPEG_MAX_BYTES && wasmJpegExact(h, buf);
}

function compileOnce(): Promise<WasmModule | undefined> {
  compiled ??= (async () => {
    const path = createRequire(import.meta.url).resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm');
    return WebAssembly.compile(await readFile(path));
  })().catch((e: unknown) => {
    process.emitWarning(`the WebAssembly JPEG decoder did not load, every JPEG goes through libvips: ${(e as Error).message}`, { code: 'CVOPT_JPEG_WASM' });
    return undefined;
  });
  return compiled;
}

function decoder(): Promise<MozJpegModule | undefined> {
  instance ??= compileOnce().then((wasm) => {
    if (!wasm) return undefined;
    const factory = mozjpegFactory as unknown as MozJpegFactory;
    return factory({
      noInitialRun: true,
      instantiateWasm: (imports, done) => {
        const inst = new WebAssembly.Instance(wasm, imports);
        done(inst);
        return inst.exports;
      },
      print: (s) => messages.push(s),
      printErr: (s) => messages.push(s),
    });
  });
  return instance;
}

/**
 * Decodes a JPEG that passed wasmJpegEligible, or gives undefined and the caller uses libvips, which then
 * decodes it or words the error as it always has: on any message from libjpeg (a warning means padded or
 * guessed pixels, which libvips with failOn 'error' refuses), on a fatal error, or a size other than the header's.
 */
export async function decodeJpegWasm(buf: Uint8Array, h: JpegHeader): Promise<RgbaImage | undefined> {
  const mod = await decoder();
  if (!mod) return undefined;
  messages.length = 0;
  let out: ReturnType<MozJpegModule['decode']>;
  try {
    out = mod.decode(buf, false);
  } catch {
    // libjpeg's error_exit left through emscripten's exit(): the input's copies in the wasm heap are never freed,
    // so the instance is dropped (its memory with it) and the next call builds a fresh one from the compiled module.
    instance = undefined;
    return undefined;
  }
  if (!out || messages.length > 0 || out.width !== h.width || out.height !== h.height) return undefined;
  decodes++;
  return { data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length), width: out.width, height: out.height };
}

/** Compiles and instantiates the decoder now (a service calls this while it warms up), so no request pays for it. */
export async function warmJpegWasm(): Promise<void> {
  if (enabled) await decoder();
}
