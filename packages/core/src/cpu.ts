import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';

/** Where the cgroup files are read from (tests point these at a folder of their own). */
export interface CgroupPaths {
  /** The cgroup filesystem's mount point (default /sys/fs/cgroup). */
  root?: string;
  /** This process's cgroup membership file (default /proc/self/cgroup). */
  self?: string;
}

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** CPUs a quota of `quota` µs per `period` µs allows, or undefined for none (-1, "max") or a malformed pair. */
function quotaOf(quota: string | undefined, period: string | undefined): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  return Number.isFinite(q) && Number.isFinite(p) && q > 0 && p > 0 ? q / p : undefined;
}

/**
 * The tightest limit from `dir` up to `top`, each level read by `limitAt`: a container's cgroup may sit under a
 * parent (a Kubernetes pod's) that holds the limit. A cgroup path this mount does not show (no cgroup namespace)
 * leaves the mount's own top level.
 */
function tightest(mount: string, path: string, limitAt: (dir: string) => number | undefined): number | undefined {
  const top = resolve(mount);
  let dir = resolve(top, `.${path}`);
  if (!dir.startsWith(`${top}/`) || !existsSync(dir)) dir = top;
  let best: number | undefined;
  for (;;) {
    const limit = limitAt(dir);
    if (limit !== undefined) best = best === undefined ? limit : Math.min(best, limit);
    if (dir === top) return best;
    dir = dirname(dir);
  }
}

/**
 * The CPU quota of this process's cgroup in CPUs (a container's `--cpus 1.5` is 1.5; a Kubernetes CPU limit the
 * same), or undefined when none is set or it cannot be read (not Linux, no cgroup filesystem). cgroup v2 reads
 * `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, at the process's cgroup and every parent up to the mount.
 */
export function cpuQuota(paths: CgroupPaths = {}): number | undefined {
  const root = paths.root ?? '/sys/fs/cgroup';
  const lines = (read(paths.self ?? '/proc/self/cgroup') ?? '').split('\n');
  let best: number | undefined;
  const keep = (q: number | undefined) => {
    if (q !== undefined) best = best === undefined ? q : Math.min(best, q);
  };
  for (const line of lines) {
    // hierarchy-id:controllers:path — v2's single hierarchy is "0::/path".
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, id, controllers, path] = m as unknown as [string, string, string, string];
    const rel = posix.normalize(path);
    if (id === '0' && controllers === '') {
      const top = existsSync(join(root, 'unified', 'cgroup.controllers')) ? join(root, 'unified') : root;
      keep(tightest(top, rel, (dir) => {
        const [quota, period] = (read(join(dir, 'cpu.max')) ?? '').split(/\s+/);
        return quotaOf(quota, period);
      }));
    } else if (controllers.split(',').includes('cpu')) {
      for (const mount of ['cpu,cpuacct', 'cpuacct,cpu', 'cpu']) {
        const top = join(root, mount);
        if (!existsSync(join(top, 'cpu.cfs_quota_us'))) continue;
        keep(tightest(top, rel, (dir) => quotaOf(read(join(dir, 'cpu.cfs_quota_us')), read(join(dir, 'cpu.cfs_period_us')))));
        break;
      }
    }
  }
  return best;
}

/**
 * The CPUs this process can keep busy at once: the cores it may run on, capped by a cgroup CPU quota, rounded down
 * (a quota of 1.5 CPUs keeps one thread busy without being throttled), at least 1. os.cpus() and ONNX Runtime's
 * default count the host's cores: in a 2-CPU container on a 64-core node they would start dozens of threads, which
 * the quota then stops for the rest of each 100 ms period.
 */
export function usableCpus(paths: CgroupPaths = {}): number {
  const cores = availableParallelism();
  const quota = cpuQuota(paths);
  return quota === undefined ? cores : Math.max(1, Math.min(cores, Math.floor(quota)));
}

/**
 * The thread count to ask for where a library would pick its own (ONNX Runtime's intra-op default: one per physical
 * core): usableCpus() when a cgroup quota holds the process below its cores, else undefined (the library's choice
 * stands).
 */
export function quotaThreads(paths: CgroupPaths = {}): number | undefined {
  const usable = usableCpus(paths);
  return usable < availableParallelism() ? usable : undefined;
}

/** The intra-op threads to open an ONNX Runtime session with: the caller's count, else quotaThreads() (or unset). */
export function intraOpThreadsFor(asked: number | undefined, paths: CgroupPaths = {}): number | undefined {
  return asked || quotaThreads(paths);
}

/**
 * This thread's kernel id (Linux: /proc/thread-self names it), undefined elsewhere. A worker thread is a task of its
 * own there, so setpriority() on this id changes the priority of this thread alone.
 */
export function currentThreadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}
