import { execFileSync, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { REPO } from './helpers.js';

/** podman with the project's settings for sandboxed machines (runc, no default ulimits). */
export const PODMAN_ENV = { ...process.env, CONTAINERS_CONF: join(REPO, 'scripts/containers.conf') };

export function podman(...args: string[]): string {
  return execFileSync('podman', args, { env: PODMAN_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

/** stdout and stderr together (container logs keep the service's stderr on podman's stderr). */
export function podmanAll(...args: string[]): string {
  const r = spawnSync('podman', args, { env: PODMAN_ENV, encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`;
}

/** Run and ignore failure (clean-up of things that may not exist). */
export function podmanQuiet(...args: string[]): void {
  spawnSync('podman', args, { env: PODMAN_ENV, stdio: 'ignore' });
}

/**
 * Why the container tests cannot run here, or undefined when they can: they need root (rootful podman, apt,
 * debootstrap). scripts/container-base.sh installs the rest on first use.
 */
export function containerSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'containers need Linux';
  if (process.getuid?.() !== 0) return 'the container tests need root (rootful podman; see ../shared/CONTAINERS.md)';
  return undefined;
}

/** Install podman & co. and build the cached base images; returns the Node base image name. */
export function containerBase(): string {
  return execFileSync('bash', [join(REPO, 'scripts/container-base.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!;
}

export async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export async function waitReady(url: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url}/readyz did not turn ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
