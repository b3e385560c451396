/**
 * A bounded single-producer, single-consumer async queue: `push` waits while the queue is full (backpressure on the
 * stage before), `pop` waits while it is empty and returns undefined once the producer has closed it and it drained.
 * `fail` hands an error to the consumer so a failing stage stops the whole pipeline.
 */
export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private closed = false;
  private error: unknown;
  private waitingPop: (() => void) | undefined;
  private waitingPush: (() => void) | undefined;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be an integer ≥ 1, got ${capacity}`);
  }

  get length(): number {
    return this.items.length;
  }

  async push(item: T): Promise<void> {
    while (this.items.length >= this.capacity && !this.closed) await new Promise<void>((r) => (this.waitingPush = r));
    if (this.closed) return;
    this.items.push(item);
    this.wakePop();
  }

  /** Next item, or undefined when closed and drained; throws what `fail` was given. */
  async pop(): Promise<T | undefined> {
    while (this.items.length === 0) {
      if (this.error !== undefined) throw this.error;
      if (this.closed) return undefined;
      await new Promise<void>((r) => (this.waitingPop = r));
    }
    const item = this.items.shift() as T;
    this.wakePush();
    return item;
  }

  /** No more items; those queued are still delivered. */
  close(): void {
    this.closed = true;
    this.wakePop();
    this.wakePush();
  }

  fail(error: unknown): void {
    this.error = error;
    this.items.length = 0;
    this.close();
  }

  private wakePop(): void {
    const w = this.waitingPop;
    this.waitingPop = undefined;
    w?.();
  }

  private wakePush(): void {
    const w = this.waitingPush;
    this.waitingPush = undefined;
    w?.();
  }
}
