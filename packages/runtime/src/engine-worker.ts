import { existsSync, readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { CvoptError, currentThreadId, toCvoptError, type ModelManifest } from '@cvopt/core';
import { createOrtEngine, type Engine, type OrtEngineOptions } from '@cvopt/engines';
import { BufferPool } from './buffer-pool.js';

/**
 * The model's own thread. onnxruntime-node's session.run holds the calling thread for the whole inference,
 * so on the main thread it would freeze HTTP parsing, admission and refusals for every batch. Here it blocks
 * only this worker; the main thread keeps answering.
 */
interface Init {
  modelPath: string;
  manifest: ModelManifest;
  options: OrtEngineOptions;
  /** Nice value for this thread and the intra-op threads ONNX Runtime starts from it (Linux: per thread). */
  nice: number;
  /** 'always': the nice value from the start; 'under-load': only while the main thread says the service is loaded. */
  niceMode: 'always' | 'under-load';
}

type Request =
  | { type: 'run'; id: number; data: Float32Array; dims: number[] }
  | { type: 'give'; data: Float32Array }
  | { type: 'loaded'; loaded: boolean }
  | { type: 'close' };

/**
 * Output buffers the main thread is done with. A result is copied into one of these instead of handing over the
 * buffer ONNX Runtime allocated, so the main thread's heap sees no new multi-megabyte allocation per request
 * (each one costs it a full garbage collection sooner); the fresh buffer dies here, in this small heap.
 */
const outputs = new BufferPool();

const port = parentPort;
if (!port) throw new Error('engine-worker must run inside a worker thread');

const wireError = (e: unknown) => {
  const err = toCvoptError(e);
  return { code: err.code, message: err.message, hint: err.hint, where: err.where };
};

/** The ids of every thread of the process (Linux; empty elsewhere). */
const taskIds = (): Set<number> => (existsSync('/proc/self/task') ? new Set(readdirSync('/proc/self/task').map(Number)) : new Set());

/**
 * The nice value of the inference threads: this one and the intra-op threads ONNX Runtime started for its session
 * (the threads that appeared while it was created). Raised only while the service is loaded, where the kernel lets
 * this process lower it again (CAP_SYS_NICE or RLIMIT_NICE); elsewhere raised once, for good, as before.
 */
class ThreadNice {
  private current: number;
  constructor(
    private readonly tids: number[],
    readonly calm: number,
    readonly loaded: number,
  ) {
    this.current = calm;
  }

  /** Whether the nice value can go back down: tried on this thread (raised, then lowered again). */
  probe(): boolean {
    const own = this.tids[0] as number;
    try {
      setPriority(own, Math.min(19, this.calm + 1));
      setPriority(own, this.calm);
      return true;
    } catch {
      return false;
    }
  }

  set(loaded: boolean): void {
    const nice = loaded ? this.loaded : this.calm;
    if (nice === this.current) return;
    this.current = nice;
    // A thread that has exited since is skipped; the rest still change.
    for (const tid of this.tids) {
      try {
        setPriority(tid, nice);
      } catch {
        /* thread gone */
      }
    }
  }
}

const init = workerData as Init;
let engine: Engine;
let nice: ThreadNice | undefined;
try {
  const tid = currentThreadId();
  const calm = getPriority();
  const dynamic = init.niceMode === 'under-load' && tid !== undefined && init.nice > calm;
  // Static: before the session exists, so its thread pool inherits the value and the main thread (HTTP,
  // admission, refusals) and image decoding win the CPU whenever they need it.
  if (!dynamic && init.nice !== 0) setPriority(init.nice);
  const before = taskIds();
  engine = await createOrtEngine(init.modelPath, init.manifest, init.options);
  if (dynamic) {
    const pool = [...taskIds()].filter((t) => !before.has(t));
    nice = new ThreadNice([tid, ...pool], calm, init.nice);
    // Without the right to lower it again, the value is raised once and for all (the static behaviour).
    if (!nice.probe()) {
      nice.set(true);
      nice = undefined;
    }
  }
  port.postMessage({ type: 'ready', info: engine.describe(), niceFollowsLoad: nice !== undefined });
} catch (e) {
  port.postMessage({ type: 'failed', error: wireError(e) });
  process.exit(0);
}

port.on('message', (m: Request) => {
  if (m.type === 'close') {
    void engine.close().then(() => process.exit(0));
    return;
  }
  if (m.type === 'give') {
    outputs.give(m.data);
    return;
  }
  if (m.type === 'loaded') {
    nice?.set(m.loaded);
    return;
  }
  const t0 = performance.now();
  engine.run(m.data, m.dims).then(
    (out) => {
      const ms = performance.now() - t0;
      // Copy only when the output is a view into a larger buffer; otherwise hand the buffer over. The input goes
      // back too, so the main thread can decode the next image into it instead of allocating a fresh tensor.
      const reuse = outputs.reuse(out.data.length);
      if (reuse) reuse.set(out.data);
      const data = reuse ?? (out.data.byteOffset === 0 && out.data.byteLength === out.data.buffer.byteLength ? out.data : out.data.slice());
      port.postMessage({ type: 'result', id: m.id, data, dims: out.dims, input: m.data, ms }, [data.buffer as ArrayBuffer, m.data.buffer as ArrayBuffer]);
    },
    (e: unknown) => port.postMessage({ type: 'result', id: m.id, error: wireError(e instanceof CvoptError ? e : toCvoptError(e)) }),
  );
});
