import { describe, expect, it } from 'vitest';
import { CvoptError } from '@cvopt/core';
import { decideBatch } from './batcher.js';
import { Scheduler } from './scheduler.js';
import { Semaphore } from './semaphore.js';

/** A runner the test releases by hand, to hold batches "running" as long as needed. */
function gatedRunner() {
  const gates: (() => void)[] = [];
  const batches: number[][] = [];
  const run = async (inputs: number[]) => {
    batches.push(inputs);
    await new Promise<void>((r) => gates.push(r));
    return inputs.map((x) => x * 10);
  };
  const releaseAll = () => gates.splice(0).forEach((g) => g());
  return { run, batches, releaseAll, pending: () => gates.length };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as CvoptError).code;
  }
}

/** A clock the test moves by hand. */
function manualClock() {
  let t = 0;
  return { now: () => t, set: (v: number) => (t = v) };
}

describe('Scheduler', () => {
  it('estimates waits from how fast the queue really drains, not only from engine time', async () => {
    const clock = manualClock();
    const g = gatedRunner();
    const s = new Scheduler<number, number>({ queueMax: 100, concurrency: 1, batch: { maxBatch: 1, maxDelayMs: 0 }, run: g.run, initialBatchMs: 10, now: clock.now });
    // Two admitted requests; the second is still decoding when the first finishes.
    const [t1, t2] = [s.admit(10_000), s.admit(10_000)];
    const a = s.submit(1, { deadlineMs: 10_000, ticket: t1 });
    await tick();
    clock.set(10);
    g.releaseAll();
    expect(await a).toBe(10);
    clock.set(50);
    const b = s.submit(2, { deadlineMs: 10_000, ticket: t2 });
    await tick();
    clock.set(60);
    g.releaseAll();
    expect(await b).toBe(20);
    t1.release();
    t2.release();
    // The engine took 10 ms per item, but the queue drained one item per 50 ms (the gap was decoding).
    expect(s.serviceMs).toBeCloseTo(10);
    expect(s.drainMs).toBeCloseTo(50);
    const held = [s.admit(10_000), s.admit(10_000)];
    expect(s.estimatedWaitMs()).toBeCloseTo(100);
    // 2 waiting × 50 ms + 10 ms service = 110 ms: past 0.85 × 120 ms; engine time alone (30 ms) would have admitted it.
    expect(() => s.admit(120)).toThrow(/past the deadline of 120 ms/);
    held.forEach((t) => t.release());
  });

  it('plans to fill only admissionTarget of a deadline, leaving the rest for estimation error', async () => {
    const g = gatedRunner();
    const mk = (admissionTarget: number) => new Scheduler<number, number>({ queueMax: 100, concurrency: 1, batch: { maxBatch: 1, maxDelayMs: 0 }, run: g.run, initialBatchMs: 30, admissionTarget });
    for (const [target, expected] of [[0.85, 'DEADLINE_EXCEEDED'], [1, 'ok']] as const) {
      const s = mk(target);
      const running = s.submit(1, { deadlineMs: 10_000 }); // busy, so admission judges queueing
      const queued = [s.submit(2, { deadlineMs: 10_000 }), s.submit(3, { deadlineMs: 10_000 })];
      await tick();
      // 2 waiting × 30 ms + 30 ms service = 90 ms against a deadline of 100 ms.
      let got = 'ok';
      try {
        s.admit(100).release();
      } catch (e) {
        got = (e as CvoptError).code;
      }
      expect(got).toBe(expected);
      for (let i = 0; i < 3; i++) {
        g.releaseAll();
        await tick();
      }
      await Promise.all([running, ...queued]);
    }
    expect(() => mk(0)).toThrow(/admissionTarget/);
  });

  it('bounds the queue: beyond queueMax waiting requests it refuses at once with QUEUE_FULL and a Retry-After', async () => {
    const g = gatedRunner();
    const s = new Scheduler<number, number>({ queueMax: 2, concurrency: 1, batch: { maxBatch: 1, maxDelayMs: 0 }, run: g.run, initialBatchMs: 1500 });
    const accepted = [s.submit(1, { deadlineMs: 60_000 }), s.submit(2, { deadlineMs: 60_000 }), s.submit(3, { deadlineMs: 60_000 })];
    await tick();
    expect(s.inFlight).toBe(1);
    expect(s.depth).toBe(2);
    let err: CvoptError | undefined;
    try {
      await s.submit(4, { deadlineMs: 60_000 });
    } catch (e) {
      err = e as CvoptError;
    }
    expect(err?.code).toBe('QUEUE_FULL');
    expect(err?.httpStatus).toBe(429);
    expect(err?.retryAfterS).toBe(5); // (2 waiting × 1.5 s + 1.5 s) / 1 worker, rounded up
    for (let i = 0; i < 3; i++) {
      g.releaseAll();
      await tick();
    }
    expect(await Promise.all(accepted)).toEqual([10, 20, 30]);
    await s.idle();
  });

  it('refuses at once when the estimated wait exceeds the deadline, and accepts a longer deadline', async () => {
    const g = gatedRunner();
    const s = new Scheduler<number, number>({ queueMax: 100, concurrency: 1, batch: { maxBatch: 1, maxDelayMs: 0 }, run: g.run, initialBatchMs: 100 });
    const first = s.submit(1, { deadlineMs: 10_000 });
    const queued = [2, 3, 4].map((x) => s.submit(x, { deadlineMs: 10_000 }));
    await tick();
    // 3 waiting × 100 ms + its own 100 ms = 400 ms > 250 ms
    expect(await codeOf(s.submit(5, { deadlineMs: 250 }))).toBe('DEADLINE_EXCEEDED');
    const longer = s.submit(6, { deadlineMs: 1000 });
    for (let i = 0; i < 6; i++) {
      g.releaseAll();
      await tick();
    }
    expect(await first).toBe(10);
    expect(await Promise.all(queued)).toEqual([20, 30, 40]);
    expect(await longer).toBe(60);
  });

  it('never runs a request cancelled while queued, nor one whose deadline passed in the queue', async () => {
    const g = gatedRunner();
    const s = new Scheduler<number, number>({ queueMax: 10, concurrency: 1, batch: { maxBatch: 1, maxDelayMs: 0 }, run: g.run });
    const first = s.submit(1, { deadlineMs: 10_000 });
    const ac = new AbortController();
    const cancelled = s.submit(2, { deadlineMs: 10_000, signal: ac.signal });
    const expiring = s.submit(3, { deadlineMs: 20 });
    const kept = s.submit(4, { deadlineMs: 10_000 });
    ac.abort();
    expect(await codeOf(cancelled)).toBe('CANCELLED');
    expect(await codeOf(expiring)).toBe('DEADLINE_EXCEEDED');
    g.releaseAll();
    await tick();
    g.releaseAll();
    expect(await first).toBe(10);
    expect(await kept).toBe(40);
    expect(g.batches).toEqual([[1], [4]]);
    await s.idle();
  });

  it('batches what queued while the engine ran, up to maxBatch, and never holds an idle engine', async () => {
    const g = gatedRunner();
    const s = new Scheduler<number, number>({ queueMax: 100, concurrency: 1, batch: { maxBatch: 4, maxDelayMs: 400 }, run: g.run });
    const all = Array.from({ length: 7 }, (_, i) => s.submit(i, { deadlineMs: 10_000 }));
    await tick();
    expect(g.batches).toEqual([[0]]); // the engine was idle: the first request goes alone, at once
    g.releaseAll();
    await tick();
    expect(g.batches).toEqual([[0], [1, 2, 3, 4]]); // what queued meanwhile goes together, up to maxBatch
    g.releaseAll();
    await tick();
    expect(g.batches).toEqual([[0], [1, 2, 3, 4], [5, 6]]); // a partial batch is not held: nothing else is running
    g.releaseAll();
    expect(await Promise.all(all)).toEqual([0, 10, 20, 30, 40, 50, 60]);
  });

  it('with prefetch, sends one full batch ahead of a busy instance, never a partial one, and counts it as waiting', async () => {
    const g = gatedRunner();
    const s = new Scheduler<number, number>({ queueMax: 100, concurrency: 1, batch: { maxBatch: 2, maxDelayMs: 0 }, run: g.run, prefetch: true, initialBatchMs: 10 });
    const first = s.submit(0, { deadlineMs: 10_000 });
    await tick();
    expect(g.batches).toEqual([[0]]);
    const second = s.submit(1, { deadlineMs: 10_000 });
    await tick();
    expect(g.batches).toEqual([[0]]); // a partial batch stays queued: it may still fill
    const rest = [2, 3, 4].map((i) => s.submit(i, { deadlineMs: 10_000 }));
    await tick();
    expect(g.batches).toEqual([[0], [1, 2]]); // a full one goes ahead while [0] runs
    expect(s.inFlightBatches).toBe(2); // one ahead per instance: [3, 4] waits although it is full
    expect(s.depth).toBe(2);
    expect(s.aheadItems).toBe(2);
    // Ahead of a newcomer: the batch sent ahead (2) and the queue (2), at 10 ms per item.
    expect(s.estimatedWaitMs()).toBeCloseTo(40);
    g.releaseAll();
    await tick();
    expect(g.batches).toEqual([[0], [1, 2], [3, 4]]);
    g.releaseAll();
    expect(await Promise.all([first, second, ...rest])).toEqual([0, 10, 20, 30, 40]);
    expect(s.aheadItems).toBe(0);
  });

  it('holds a partial batch for at most maxDelayMs only while another batch is running', async () => {
    const g = gatedRunner();
    const s = new Scheduler<number, number>({ queueMax: 100, concurrency: 2, batch: { maxBatch: 4, maxDelayMs: 300 }, run: g.run });
    const all = Array.from({ length: 3 }, (_, i) => s.submit(i, { deadlineMs: 10_000 }));
    await tick();
    expect(g.batches).toEqual([[0]]); // one worker busy, two waiting: held for the delay
    const t0 = performance.now();
    while (g.batches.length < 2 && performance.now() - t0 < 5000) await tick();
    expect(performance.now() - t0).toBeGreaterThan(200);
    expect(g.batches).toEqual([[0], [1, 2]]);
    g.releaseAll();
    expect(await Promise.all(all)).toEqual([0, 10, 20]);
  });

  it('refuses new work once closed and still finishes what it accepted', async () => {
    const g = gatedRunner();
    const s = new Scheduler<number, number>({ queueMax: 10, concurrency: 1, batch: { maxBatch: 1, maxDelayMs: 0 }, run: g.run });
    const a = s.submit(1, { deadlineMs: 10_000 });
    const b = s.submit(2, { deadlineMs: 10_000 });
    s.close();
    expect(await codeOf(s.submit(3, { deadlineMs: 10_000 }))).toBe('SHUTTING_DOWN');
    let idle = false;
    void s.idle().then(() => (idle = true));
    for (let i = 0; i < 3; i++) {
      g.releaseAll();
      await tick();
    }
    expect(await Promise.all([a, b])).toEqual([10, 20]);
    expect(idle).toBe(true);
  });

  it('always admits into an idle service at the default SLO, but holds a client deadline strictly', () => {
    const s = new Scheduler<number, number>({ queueMax: 10, concurrency: 1, batch: { maxBatch: 1, maxDelayMs: 0 }, run: async (x) => x, initialBatchMs: 3000 });
    const t = s.admit(2000, { strict: false });
    expect(() => s.admit(2000, { strict: false })).toThrowError(/past the deadline/); // one waiting now
    t.release();
    expect(() => s.admit(2000)).toThrowError(/past the deadline/);
  });

  it('holds admission tickets: requests still decoding count against the queue bound', () => {
    const s = new Scheduler<number, number>({ queueMax: 2, concurrency: 1, batch: { maxBatch: 1, maxDelayMs: 0 }, run: async (x) => x });
    const t1 = s.admit(1000);
    s.admit(1000);
    expect(() => s.admit(1000)).toThrowError(/queue is full/);
    t1.release();
    t1.release(); // idempotent
    expect(() => s.admit(1000)).not.toThrow();
  });
});

describe('GPU semaphore under a scheduler with more workers than slots', () => {
  it('never lets more than its slots run at once, and reaches the cap under load', async () => {
    const gpu = new Semaphore(2);
    let running = 0;
    let peak = 0;
    // A GPU-tagged task: it holds the device for a few ms, like a kernel launch would.
    const gpuTask = async (inputs: number[]) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 3));
      running--;
      return inputs;
    };
    const s = new Scheduler<number, number>({ queueMax: 1000, concurrency: 6, batch: { maxBatch: 1, maxDelayMs: 0 }, run: gpuTask, limiter: gpu });
    const out = await Promise.all(Array.from({ length: 60 }, (_, i) => s.submit(i, { deadlineMs: 60_000 })));
    expect(out).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(peak).toBe(2);
    expect(gpu.maxObserved).toBe(2);
    expect(gpu.inUse).toBe(0);
  });

  it('drops a waiter whose signal aborts', async () => {
    const gpu = new Semaphore(1);
    await gpu.acquire();
    const ac = new AbortController();
    const waiting = gpu.acquire(ac.signal);
    ac.abort();
    expect(await codeOf(waiting)).toBe('CANCELLED');
    gpu.release();
    expect(gpu.inUse).toBe(0);
  });
});

describe('decideBatch', () => {
  it('takes a full batch at once, waits for a partial one, and never waits when batching is off', () => {
    expect(decideBatch({ maxBatch: 4, maxDelayMs: 5 }, 9, 0)).toEqual({ take: 4 });
    expect(decideBatch({ maxBatch: 4, maxDelayMs: 5 }, 2, 1, 1)).toEqual({ waitMs: 4 });
    expect(decideBatch({ maxBatch: 4, maxDelayMs: 5 }, 2, 6, 1)).toEqual({ take: 2 });
    expect(decideBatch({ maxBatch: 4, maxDelayMs: 5 }, 2, 1, 0)).toEqual({ take: 2 }); // idle engine: no wait
    expect(decideBatch({ maxBatch: 1, maxDelayMs: 5 }, 3, 0)).toEqual({ take: 1 });
  });
});
