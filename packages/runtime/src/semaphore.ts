import { CvoptError } from '@cvopt/core';

/**
 * Counting semaphore for a scarce device (a GPU allows at most a couple of parallel tasks). It records the
 * highest concurrency it ever granted so tests and /metrics can prove the cap held.
 */
export class Semaphore {
  private inUseCount = 0;
  private maxObservedCount = 0;
  private readonly waiters: { grant: () => void; reject: (e: unknown) => void; signal: AbortSignal | undefined; onAbort: () => void }[] = [];

  constructor(readonly slots: number) {
    if (!Number.isInteger(slots) || slots < 1) throw new CvoptError('INVALID_ARGUMENT', `semaphore slots must be a positive integer, got ${slots}`);
  }

  get inUse(): number {
    return this.inUseCount;
  }

  get maxObserved(): number {
    return this.maxObservedCount;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new CvoptError('CANCELLED', 'cancelled while waiting for a slot'));
    if (this.inUseCount < this.slots) {
      this.take();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', waiter.onAbort);
          this.take();
          resolve();
        },
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new CvoptError('CANCELLED', 'cancelled while waiting for a slot'));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(): void {
    if (this.inUseCount === 0) throw new CvoptError('INTERNAL', 'semaphore released more often than acquired');
    this.inUseCount--;
    const next = this.waiters.shift();
    if (next) next.grant();
  }

  /** Run `fn` holding one slot. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(signal);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private take(): void {
    this.inUseCount++;
    if (this.inUseCount > this.maxObservedCount) this.maxObservedCount = this.inUseCount;
  }
}
