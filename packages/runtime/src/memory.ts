import { readFileSync } from 'node:fs';

const PAGE = 4096;

/**
 * The service's resident memory as the soft cap sees it: this process plus the children it runs (ffmpeg decoding
 * a video costs as much as the node side). Sampled on a timer, so the gate reads a number, not /proc.
 */
export class MemoryWatch {
  private readonly children = new Set<number>();
  private last = process.memoryUsage.rss();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 200) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** Count `pid`'s memory until it exits (or `untrack`). */
  track(pid: number): void {
    this.children.add(pid);
  }

  untrack(pid: number): void {
    this.children.delete(pid);
  }

  get trackedChildren(): number {
    return this.children.size;
  }

  /** Bytes: node's RSS plus every tracked child's, as of the last sample. */
  get rss(): number {
    return this.last;
  }

  sample(): number {
    let total = process.memoryUsage.rss();
    for (const pid of this.children) {
      try {
        total += Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]) * PAGE;
      } catch {
        this.children.delete(pid); // gone (or not Linux): nothing to count
      }
    }
    this.last = total;
    return total;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
