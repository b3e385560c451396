import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';
import { CvoptError, type GpuLease } from '@cvopt/core';
import type { Row, SqlDriver, SqlExecutor } from './sql/driver.js';

export interface GpuConfig {
  /** This machine's name in the accounting (default `os.hostname()`): every worker on one machine must agree. */
  host?: string;
  /** GPU tasks at once per device (default 2, the platform's ceiling). */
  maxSlots?: number;
  /**
   * VRAM budget per device, MiB, when `nvidia-smi` is absent (or to lower it): the test and CPU-only machines
   * configure one to exercise admission. Default: what nvidia-smi reports minus `reserveMb`.
   */
  budgetMb?: number;
  /** Devices when no nvidia-smi is present (default 1 when `budgetMb` is set, else 0: no GPU). */
  devices?: number;
  /** VRAM kept free on each device for the driver, display and other programs, MiB (default 1024). */
  reserveMb?: number;
  /** How often a waiting job re-checks admission, ms (default 200). */
  pollMs?: number;
  /** Use nvidia-smi when it is on PATH (default true). */
  probe?: boolean;
}

export interface GpuDeviceState {
  device: number;
  budgetMb: number;
  /** From nvidia-smi at start-up, when present. */
  totalMb?: number;
  usedMb?: number;
  slots: { max: number; used: number };
  reservedMb: number;
  jobs: { jobId: string; vramMb: number }[];
}

export interface GpuState {
  host: string;
  maxSlots: number;
  devices: GpuDeviceState[];
  waiting: { jobId: string; vramMb: number; since: string }[];
}

interface DeviceInfo {
  device: number;
  budgetMb: number;
  totalMb?: number;
  usedMb?: number;
}

/** Per-device `memory.total, memory.used` in MiB from nvidia-smi, or undefined when it is absent or fails. */
export function probeNvidiaSmi(): { totalMb: number; usedMb: number }[] | undefined {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=memory.total,memory.used', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const rows = out
      .trim()
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => l.split(',').map((x) => Number(x.trim())));
    if (!rows.length || rows.some((r) => r.length < 2 || r.some((x) => !Number.isFinite(x)))) return undefined;
    return rows.map((r) => ({ totalMb: r[0] as number, usedMb: r[1] as number }));
  } catch {
    return undefined;
  }
}

/**
 * A rough VRAM need for training or running a detector, MiB: weights, gradients and Adam's two moments in FP32
 * (16 bytes per parameter when training, 4 when inferring), activations that grow with batch × imgsz², and the
 * CUDA context. It errs high; a measured dry run can replace it per job.
 */
export function estimateVramMb(p: { params: number; imgsz: number; batch: number; training?: boolean; fp16?: boolean; contextMb?: number }): number {
  const bytesPerParam = p.training === false ? (p.fp16 ? 2 : 4) : 16;
  const weightsMb = (p.params * bytesPerParam) / 2 ** 20;
  // ~ 2.4 KB of activations per input pixel per image for a YOLOv8n-class model while training (measured on
  // ultralytics-style graphs: 640², batch 16 ≈ 15 GiB), a quarter of that for inference without autograd.
  const perPixel = (p.training === false ? 600 : 2400) * (p.fp16 ? 0.5 : 1);
  const activationsMb = (p.batch * p.imgsz * p.imgsz * perPixel) / 2 ** 20;
  return Math.ceil(weightsMb + activationsMb + (p.contextMb ?? 500));
}

const num = (v: unknown) => (typeof v === 'number' ? v : Number(v));

/**
 * Admits GPU jobs on one machine: at most `maxSlots` at once per device, and the VRAM they declared never above
 * the device's budget. The accounting lives in the shared store (`job_gpu_leases`), not in this process, so it
 * holds across every worker process on the machine: an admission is one transaction under the database's write
 * lock (SQLite) or a per-host advisory lock (PostgreSQL). A reservation carries the job's lease time and is
 * renewed with its heartbeat, so a worker killed with SIGKILL gives its slot back when the lease runs out —
 * which a lock file or an in-memory counter would not do, and the API server can read every machine's state.
 * Reservations are keyed by (job, fencing token): a run that lost its lease but has not noticed yet keeps its
 * reservation until it stops, so the run that replaced it is admitted against the real VRAM in use.
 */
export class GpuController {
  readonly host: string;
  readonly maxSlots: number;
  private readonly pollMs: number;
  private constructor(
    private readonly db: SqlDriver,
    readonly devices: readonly DeviceInfo[],
    cfg: GpuConfig,
  ) {
    this.host = cfg.host ?? hostname();
    this.maxSlots = cfg.maxSlots ?? 2;
    this.pollMs = cfg.pollMs ?? 200;
  }

  /** Read the devices (nvidia-smi, else the configured budget) and validate the limits. */
  static create(db: SqlDriver, cfg: GpuConfig = {}): GpuController {
    const maxSlots = cfg.maxSlots ?? 2;
    if (!Number.isInteger(maxSlots) || maxSlots < 1) {
      throw new CvoptError('INVALID_CONFIG', `GPU maxSlots must be a positive integer, got ${maxSlots}`, { where: { field: 'gpu.maxSlots' } });
    }
    const reserve = cfg.reserveMb ?? 1024;
    if (!(reserve >= 0)) throw new CvoptError('INVALID_CONFIG', `GPU reserveMb must be ≥ 0, got ${reserve}`, { where: { field: 'gpu.reserveMb' } });
    if (cfg.budgetMb !== undefined && !(cfg.budgetMb > 0)) {
      throw new CvoptError('INVALID_CONFIG', `GPU budgetMb must be > 0, got ${cfg.budgetMb}`, { where: { field: 'gpu.budgetMb' } });
    }
    const smi = cfg.probe === false ? undefined : probeNvidiaSmi();
    let devices: DeviceInfo[];
    if (smi) {
      devices = smi.map((d, device) => ({
        device,
        budgetMb: Math.max(0, Math.min(d.totalMb - reserve, cfg.budgetMb ?? Infinity)),
        totalMb: d.totalMb,
        usedMb: d.usedMb,
      }));
    } else {
      const n = cfg.devices ?? (cfg.budgetMb !== undefined ? 1 : 0);
      devices = Array.from({ length: n }, (_, device) => ({ device, budgetMb: cfg.budgetMb ?? 0 }));
    }
    return new GpuController(db, devices, cfg);
  }

  private lock(tx: SqlExecutor): Promise<unknown> {
    // SQLite: the transaction already holds the database write lock. PostgreSQL: one advisory lock per host.
    return tx.dialect === 'postgres' ? tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`cvopt-gpu:${this.host}`]) : Promise.resolve();
  }

  /**
   * Wait until the job fits, then hold its reservation. Jobs are admitted first come, first served on a machine
   * (a large job is not starved by small ones). Throws GPU_MEMORY_EXHAUSTED at once when no device's budget could
   * ever hold it, and CANCELLED when `signal` aborts while waiting.
   */
  async acquire(jobId: string, fence: number, vramMb: number, leaseUntil: () => number, signal: AbortSignal): Promise<GpuLease> {
    const largest = Math.max(0, ...this.devices.map((d) => d.budgetMb));
    if (!this.devices.length) {
      throw new CvoptError('GPU_MEMORY_EXHAUSTED', `job ${jobId} needs ${vramMb} MiB of GPU memory but this worker has no GPU`, {
        hint: 'run it on a worker with a GPU (nvidia-smi present) or give this one --vram-budget-mb',
      });
    }
    if (vramMb > largest) {
      throw new CvoptError('GPU_MEMORY_EXHAUSTED', `job ${jobId} needs ${vramMb} MiB of GPU memory; the largest device budget here is ${largest} MiB`, {
        hint: 'lower the batch size or image size, or raise the budget (total minus reserve)',
        details: { needMb: vramMb, budgetMb: largest },
      });
    }
    await this.db.query(
      `INSERT INTO job_gpu_leases (job_id, fence, host, device, vram_mb, granted, requested_at, lease_until) VALUES ($1, $2, $3, -1, $4, 0, $5, $6)
       ON CONFLICT (job_id, fence) DO UPDATE SET host = $3, device = -1, vram_mb = $4, granted = 0, requested_at = $5, lease_until = $6`,
      [jobId, fence, this.host, vramMb, Date.now(), leaseUntil()],
    );
    try {
      for (;;) {
        if (signal.aborted) throw new CvoptError('CANCELLED', `job ${jobId} stopped while waiting for a GPU`);
        const lease = await this.tryAdmit(jobId, fence, vramMb, leaseUntil());
        if (lease) return lease;
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, this.pollMs);
          function done() {
            clearTimeout(t);
            signal.removeEventListener('abort', done);
            resolve();
          }
          signal.addEventListener('abort', done, { once: true });
        });
      }
    } catch (e) {
      await this.release(jobId, fence);
      throw e;
    }
  }

  private tryAdmit(jobId: string, fence: number, vramMb: number, leaseUntil: number): Promise<GpuLease | undefined> {
    return this.db.transaction(async (tx) => {
      await this.lock(tx);
      const now = Date.now();
      // A waiting job that polls is alive: keep its place. Reservations of dead workers end with their lease.
      await tx.query('UPDATE job_gpu_leases SET lease_until = $3 WHERE job_id = $1 AND fence = $2', [jobId, fence, leaseUntil]);
      await tx.query('DELETE FROM job_gpu_leases WHERE host = $1 AND lease_until < $2', [this.host, now]);
      const rows = await tx.query('SELECT * FROM job_gpu_leases WHERE host = $1', [this.host]);
      const mine = rows.find((r) => r.job_id === jobId && num(r.fence) === fence);
      if (!mine) throw new CvoptError('CANCELLED', `job ${jobId} lost its GPU reservation (its lease expired)`);
      const earlier = rows.some(
        (r) => num(r.granted) === 0 && r !== mine && (num(r.requested_at) < num(mine.requested_at) || (num(r.requested_at) === num(mine.requested_at) && String(r.job_id) < jobId)),
      );
      if (earlier) return undefined;
      const fits = this.devices
        .map((d) => {
          const on = rows.filter((r) => num(r.granted) === 1 && num(r.device) === d.device);
          return { d, used: on.length, free: d.budgetMb - on.reduce((s, r) => s + num(r.vram_mb), 0) };
        })
        .filter((x) => x.used < this.maxSlots && x.free >= vramMb)
        .sort((a, b) => b.free - a.free || a.d.device - b.d.device);
      const best = fits[0];
      if (!best) return undefined;
      await tx.query('UPDATE job_gpu_leases SET granted = 1, device = $3, lease_until = $4 WHERE job_id = $1 AND fence = $2', [jobId, fence, best.d.device, leaseUntil]);
      return { device: best.d.device, vramMb };
    });
  }

  /** Renew a reservation with the job's heartbeat. */
  async renew(jobId: string, fence: number, leaseUntil: number): Promise<void> {
    await this.db.query('UPDATE job_gpu_leases SET lease_until = $3 WHERE job_id = $1 AND fence = $2', [jobId, fence, leaseUntil]);
  }

  async release(jobId: string, fence: number): Promise<void> {
    await this.db.query('DELETE FROM job_gpu_leases WHERE job_id = $1 AND fence = $2', [jobId, fence]);
  }

  /** Publish this machine's devices and limits, so the API server can show every machine's GPUs. */
  async register(): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query('DELETE FROM job_gpu_devices WHERE host = $1', [this.host]);
      for (const d of this.devices) {
        await tx.query(
          'INSERT INTO job_gpu_devices (host, device, budget_mb, total_mb, used_mb, max_slots, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
          [this.host, d.device, d.budgetMb, d.totalMb ?? null, d.usedMb ?? null, this.maxSlots, Date.now()],
        );
      }
    });
  }

  /** Slots, reserved VRAM and waiting jobs on this machine, for /metrics and the API. */
  async state(): Promise<GpuState> {
    const rows: Row[] = await this.db.query('SELECT * FROM job_gpu_leases WHERE host = $1 AND lease_until >= $2 ORDER BY requested_at, job_id', [this.host, Date.now()]);
    return buildState(this.host, this.maxSlots, this.devices, rows);
  }

  /** Every machine's GPU state from the shared store (machines whose workers registered their devices). */
  static async states(db: SqlDriver): Promise<GpuState[]> {
    const devices = await db.query('SELECT * FROM job_gpu_devices ORDER BY host, device');
    const leases = await db.query('SELECT * FROM job_gpu_leases WHERE lease_until >= $1 ORDER BY requested_at, job_id', [Date.now()]);
    const hosts = [...new Set(devices.map((d) => String(d.host)))];
    return hosts.map((host) => {
      const mine = devices.filter((d) => d.host === host);
      const info: DeviceInfo[] = mine.map((d) => {
        const out: DeviceInfo = { device: num(d.device), budgetMb: num(d.budget_mb) };
        if (d.total_mb !== null && d.total_mb !== undefined) out.totalMb = num(d.total_mb);
        if (d.used_mb !== null && d.used_mb !== undefined) out.usedMb = num(d.used_mb);
        return out;
      });
      return buildState(host, num(mine[0]?.max_slots ?? 2), info, leases.filter((l) => l.host === host));
    });
  }
}

function buildState(host: string, maxSlots: number, devices: readonly DeviceInfo[], rows: Row[]): GpuState {
  const granted = rows.filter((r) => num(r.granted) === 1);
  return {
    host,
    maxSlots,
    devices: devices.map((d) => {
      const on = granted.filter((r) => num(r.device) === d.device);
      const out: GpuDeviceState = {
        device: d.device,
        budgetMb: d.budgetMb,
        slots: { max: maxSlots, used: on.length },
        reservedMb: on.reduce((s, r) => s + num(r.vram_mb), 0),
        jobs: on.map((r) => ({ jobId: String(r.job_id), vramMb: num(r.vram_mb) })),
      };
      if (d.totalMb !== undefined) out.totalMb = d.totalMb;
      if (d.usedMb !== undefined) out.usedMb = d.usedMb;
      return out;
    }),
    waiting: rows
      .filter((r) => num(r.granted) === 0)
      .map((r) => ({ jobId: String(r.job_id), vramMb: num(r.vram_mb), since: new Date(num(r.requested_at)).toISOString() })),
  };
}
