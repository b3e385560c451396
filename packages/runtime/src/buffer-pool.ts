/** Input buffers kept per length; enough for a full queue of one size without holding memory forever. */
const PER_LENGTH = 16;

/**
 * Float32 buffers by length, kept for reuse so a request does not allocate megabytes of tensor (every such
 * allocation brings the next full garbage collection closer). The main thread pools inputs handed back by the
 * engine workers; each worker pools the output buffers the main thread hands back.
 */
export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();

  /** A kept buffer of exactly `length` floats, if there is one. Contents undefined. */
  reuse(length: number): Float32Array | undefined {
    return this.free.get(length)?.pop();
  }

  /** A kept buffer of exactly `length` floats, or a new one. Contents undefined. */
  take(length: number): Float32Array {
    return this.reuse(length) ?? new Float32Array(length);
  }

  give(buf: Float32Array | undefined): void {
    // Only whole buffers: a view would keep (and later expose) the rest of its backing store.
    if (!buf || buf.length === 0 || buf.byteOffset !== 0 || buf.byteLength !== buf.buffer.byteLength) return;
    const list = this.free.get(buf.length) ?? [];
    if (list.length < PER_LENGTH) list.push(buf);
    this.free.set(buf.length, list);
  }
}
