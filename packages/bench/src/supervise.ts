import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/**
 * Process-tree supervision for one engine's child: its RSS (the child and every descendant, e.g. the Python
 * worker) is sampled every `intervalMs`; above the cap, or past the time limit, the whole tree is killed.
 * GPU utilisation and memory are sampled with nvidia-smi when the machine has an NVIDIA GPU.
 */

function descendants(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop() as number;
    try {
      // Children are listed per spawning thread; node and Python both spawn from their main thread.
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const k of kids ? kids.split(/\s+/).map(Number) : []) {
        out.push(k);
        stack.push(k);
      }
    } catch {
      // the process has gone, or /proc lacks children files: its own RSS still counts
    }
  }
  return out;
}

function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export interface TreeSample {
  /** Highest summed RSS of the tree seen, MB. */
  peakRssMb: number;
  killedFor?: string;
}

export function watchTree(child: ChildProcess, limits: { rssMb: number; timeS: number }, intervalMs = 100): { stop: () => TreeSample } {
  const pid = child.pid as number;
  const sample: TreeSample = { peakRssMb: 0 };
  const killTree = (why: string) => {
    if (sample.killedFor) return;
    sample.killedFor = why;
    for (const p of [...descendants(pid), pid]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  const poll = () => {
    const pids = [pid, ...descendants(pid)];
    const mb = pids.reduce((s, p) => s + rssKb(p), 0) / 1024;
    sample.peakRssMb = Math.max(sample.peakRssMb, mb);
    if (mb > limits.rssMb) killTree(`its process tree reached ${mb.toFixed(0)} MB RSS, above the cap of ${limits.rssMb} MB`);
  };
  const timer = setInterval(poll, intervalMs);
  const deadline = setTimeout(() => killTree(`it ran past the time limit of ${limits.timeS} s`), limits.timeS * 1000);
  poll();
  return {
    stop: () => {
      clearInterval(timer);
      clearTimeout(deadline);
      return { ...sample, peakRssMb: Math.round(sample.peakRssMb * 10) / 10 };
    },
  };
}

export interface GpuSample {
  utilPercent?: number;
  memMb?: number;
}

/** nvidia-smi every 200 ms while a child runs: mean utilisation and peak memory of the busiest GPU. */
export function sampleGpu(enabled: boolean): { stop: () => GpuSample } {
  if (!enabled || !existsSync('/proc/driver/nvidia/version')) return { stop: () => ({}) };
  const util: number[] = [];
  let mem = 0;
  let rest = '';
  const smi = spawn('nvidia-smi', ['--query-gpu=utilization.gpu,memory.used', '--format=csv,noheader,nounits', '-lms', '200'], { stdio: ['ignore', 'pipe', 'ignore'] });
  smi.on('error', () => {});
  smi.stdout.setEncoding('utf8').on('data', (d: string) => {
    rest += d;
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) {
      const [u, m] = l.split(',').map((x) => Number(x.trim()));
      if (Number.isFinite(u)) util.push(u as number);
      if (Number.isFinite(m)) mem = Math.max(mem, m as number);
    }
  });
  return {
    stop: () => {
      smi.kill('SIGTERM');
      return util.length ? { utilPercent: Math.round((util.reduce((a, b) => a + b, 0) / util.length) * 10) / 10, memMb: mem } : {};
    },
  };
}
