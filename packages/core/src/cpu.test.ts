import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cpuQuota, intraOpThreadsFor, quotaThreads, usableCpus } from './cpu.js';

const tmp = mkdtempSync(join(tmpdir(), 'cvopt-cgroup-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A cgroup filesystem of real files under a folder of its own: { 'a/cpu.max': '150000 100000', … }. */
function layout(name: string, self: string, files: Record<string, string>) {
  const root = join(tmp, name, 'sys');
  mkdirSync(root, { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), `${text}\n`);
  }
  const selfFile = join(tmp, name, 'cgroup');
  writeFileSync(selfFile, self);
  return { root, self: selfFile };
}

describe('cpuQuota / usableCpus', () => {
  it('cgroup v2: the tightest cpu.max from the process cgroup up (a container under a pod)', () => {
    const p = layout('v2', '0::/kubepods/pod1/ctr\n', {
      'cgroup.controllers': 'cpu memory',
      'kubepods/cpu.max': 'max 100000',
      'kubepods/pod1/cpu.max': '150000 100000',
      'kubepods/pod1/ctr/cpu.max': '400000 100000',
    });
    expect(cpuQuota(p)).toBe(1.5);
    expect(usableCpus(p)).toBe(1); // 1.5 CPUs keep one thread busy unthrottled
  });

  it('cgroup v2 inside a cgroup namespace: the path is "/" and the limit sits at the mount', () => {
    const p = layout('v2ns', '0::/\n', { 'cgroup.controllers': 'cpu', 'cpu.max': '200000 100000' });
    expect(cpuQuota(p)).toBe(2);
    expect(usableCpus(p)).toBe(Math.min(2, availableParallelism()));
  });

  it('cgroup v1 (cpu,cpuacct), a host path the mount does not show: the mount\'s own limit', () => {
    const p = layout('v1', '12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n', {
      'cpu,cpuacct/cpu.cfs_quota_us': '50000',
      'cpu,cpuacct/cpu.cfs_period_us': '100000',
    });
    expect(cpuQuota(p)).toBe(0.5);
    expect(usableCpus(p)).toBe(1); // never below one
    // Below the cores: one thread asked for in place of ONNX Runtime's one per core (this machine has 2 or more)
    expect(quotaThreads(p)).toBe(availableParallelism() > 1 ? 1 : undefined);
    // What a session is opened with: the caller's count wins, else the quota's
    expect(intraOpThreadsFor(3, p)).toBe(3);
    expect(intraOpThreadsFor(undefined, p)).toBe(quotaThreads(p));
    expect(intraOpThreadsFor(0, p)).toBe(quotaThreads(p));
  });

  it('no limit: -1, "max", a malformed file or no cgroup files at all', () => {
    const v1 = layout('v1none', '1:cpu:/\n', { 'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000' });
    const v2 = layout('v2none', '0::/a\n', { 'cgroup.controllers': 'cpu', 'a/cpu.max': 'max 100000' });
    const bad = layout('v2bad', '0::/a\n', { 'cgroup.controllers': 'cpu', 'a/cpu.max': 'lots' });
    const none = { root: join(tmp, 'absent'), self: join(tmp, 'absent', 'cgroup') };
    for (const p of [v1, v2, bad, none]) {
      expect(cpuQuota(p)).toBeUndefined();
      expect(usableCpus(p)).toBe(availableParallelism());
      expect(quotaThreads(p)).toBeUndefined();
    }
  });

  it('a path that climbs out of the mount is not followed', () => {
    const p = layout('escape', '0::/../../etc\n', { 'cgroup.controllers': 'cpu', 'cpu.max': '100000 100000' });
    expect(cpuQuota(p)).toBe(1);
  });
});
