import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CvoptError, type ErrorCode } from '@cvopt/core';
import type { LetterboxMeta, PreprocessSpec } from '@cvopt/vision';
import type { V2OutputTensor, V2Request, V2ResponseHead } from './v2-codec.js';

interface WireError {
  code: ErrorCode;
  message: string;
  hint?: string;
  where?: { file?: string; line?: number; field?: string };
}

function workerFile(): URL {
  const here = new URL('./offload-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../dist/offload-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new CvoptError('DEPENDENCY_MISSING', 'the offload worker script is not built', { hint: 'run `npx tsc -b packages/runtime`' });
}

/**
 * One worker thread for CPU work a hostile client could make long (BMP decoding, megabytes of KServe JSON in or out,
 * large base64 images), so the
 * HTTP thread keeps answering while it runs. Tasks run one at a time there, in arrival order; the number waiting
 * is bounded by admission (every task belongs to an admitted request). A worker that dies is replaced.
 */
export class Offload {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private closed = false;

  private get w(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(workerFile());
    w.unref();
    w.on('message', (m: { id: number; error?: WireError }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error) p.reject(new CvoptError(m.error.code, m.error.message, { ...(m.error.hint ? { hint: m.error.hint } : {}), ...(m.error.where ? { where: m.error.where } : {}) }));
      else p.resolve(m);
    });
    const fail = (why: string) => {
      if (this.worker === w) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(new CvoptError('INTERNAL', `the decode worker ${why}`));
      this.pending.clear();
    };
    w.on('error', (e) => fail(`crashed: ${e.message}`));
    w.on('exit', () => fail('exited'));
    this.worker = w;
    return w;
  }

  private call<T>(msg: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<T> {
    if (this.closed) return Promise.reject(new CvoptError('SHUTTING_DOWN', 'the service is shutting down'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.w.postMessage({ ...msg, id }, transfer);
    });
  }

  /** Decode + letterbox an encoded image there (the bytes are copied; `out` is transferred and comes back filled). */
  async image(bytes: Buffer, spec: PreprocessSpec, maxPixels: number, out?: Float32Array): Promise<{ tensor: Float32Array; meta: LetterboxMeta }> {
    const copy = new Uint8Array(bytes);
    const owns = out && out.byteOffset === 0 && out.byteLength === out.buffer.byteLength;
    const r = await this.call<{ tensor: Float32Array; meta: LetterboxMeta }>(
      { type: 'image', bytes: copy, spec, maxPixels, ...(owns ? { out } : {}) },
      [copy.buffer, ...(owns ? [out.buffer as ArrayBuffer] : [])],
    );
    return { tensor: r.tensor, meta: r.meta };
  }

  /** Parse and check an inference request body (JSON, or JSON header + binary tensors) there. */
  async v2(bytes: Buffer, headerLength: number | undefined, limits: { maxDepth: number }): Promise<V2Request> {
    const copy = new Uint8Array(bytes);
    const r = await this.call<{ request: V2Request }>({ type: 'v2', bytes: copy, ...(headerLength !== undefined ? { headerLength } : {}), limits }, [copy.buffer]);
    return r.request;
  }

  /** The image bytes of a /v1/predict JSON body (`{"image": "<base64>"}`), parsed and decoded there. */
  async jsonImage(bytes: Buffer): Promise<Buffer> {
    const copy = new Uint8Array(bytes);
    const r = await this.call<{ image: Uint8Array }>({ type: 'jsonImage', bytes: copy }, [copy.buffer]);
    return Buffer.from(r.image.buffer, r.image.byteOffset, r.image.byteLength);
  }

  /** An inference response body written there; the outputs' buffers are transferred (the caller must not reuse them). */
  async v2Response(head: V2ResponseHead, outputs: V2OutputTensor[], binary: string[]): Promise<{ body: Buffer; headerLength?: number }> {
    const transfer = outputs.map((o) => o.data.buffer as ArrayBuffer).filter((b, i, all) => all.indexOf(b) === i);
    const r = await this.call<{ body: Uint8Array; headerLength?: number }>({ type: 'v2out', head, outputs, binary }, transfer);
    const body = Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
    return r.headerLength === undefined ? { body } : { body, headerLength: r.headerLength };
  }

  /** Start the worker now (it loads the image libraries), so the first BMP or KServe request does not wait for it. */
  async warm(): Promise<void> {
    await this.call({ type: 'ping' }, []);
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
