import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, sep } from 'node:path';
import { CvoptError } from '@cvopt/core';

/**
 * The runtime service as a production bundle: `@cvopt/runtime` and the cvopt packages it imports (core, vision,
 * engines), their built JavaScript only, plus the third-party packages they need at run time, copied from the
 * installed tree (no registry is reached). The layout is what `npm ci --omit=dev` makes of the generated
 * package.json + package-lock.json: cvopt packages as `file:` links into `vendor/`, everything else under
 * `node_modules/`, so a user can rebuild the same tree from the lockfile.
 */

export type Variant = 'cpu' | 'gpu';

export interface BundleResult {
  /** Entry point, relative to the bundle root. */
  main: string;
  /** cvopt workspace packages in the bundle, by name. */
  workspaces: string[];
  /** Third-party packages, `node_modules/...` path → version. */
  packages: Record<string, string>;
}

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [k: string]: unknown;
}

type LockEntry = Record<string, unknown>;

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** The installed tree the bundle is cut from: the directory whose node_modules holds @cvopt/runtime. */
export function findInstallRoot(): { root: string; runtimeDir: string } {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('@cvopt/runtime');
  } catch (e) {
    throw new CvoptError('DEPENDENCY_MISSING', `the runtime package @cvopt/runtime is not installed: ${(e as Error).message}`, { hint: 'run `npm run build` at the repository root' });
  }
  let dir = dirname(entry);
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  // The link node_modules/@cvopt/runtime → packages/runtime: the install root holds the lockfile.
  let root = dirname(dir);
  while (root !== dirname(root) && !existsSync(join(root, 'package-lock.json'))) root = dirname(root);
  if (!existsSync(join(root, 'package-lock.json'))) {
    throw new CvoptError('DEPENDENCY_MISSING', 'no package-lock.json above the installed runtime; the bundle needs the lockfile', { hint: 'package from a cvopt checkout installed with `npm ci`' });
  }
  return { root, runtimeDir: realpathSync(dir) };
}

/** Node's lookup: `name` as seen from a package directory, walking up the node_modules folders. */
function locate(name: string, fromDir: string, root: string): string | undefined {
  let d = fromDir;
  for (;;) {
    const candidate = join(d, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (d === root || d === dirname(d)) return undefined;
    d = dirname(d);
  }
}

/** Files a running service never reads: types, source maps, docs, tests, TypeScript sources. */
function keepFile(path: string): boolean {
  const b = basename(path);
  if (/\.(d\.ts|d\.mts|d\.cts|map|tsbuildinfo|md|markdown|ts)$/i.test(b) && !/^license/i.test(b)) return false;
  if (/\.test\.(js|mjs|cjs)$/.test(b)) return false;
  return !/^(test|tests|__tests__|docs|example|examples|\.github)$/.test(b);
}

/** onnxruntime-node ships every platform; keep Linux x64, and for the CPU image no GPU provider library. */
function keepOrtFile(rel: string, variant: Variant): boolean {
  const parts = rel.split(sep);
  const i = parts.indexOf('napi-v6');
  if (i >= 0) {
    const platform = parts[i + 1];
    const arch = parts[i + 2];
    if (platform !== undefined && platform !== 'linux') return false;
    if (arch !== undefined && arch !== 'x64') return false;
    if (variant === 'cpu' && /providers_(cuda|tensorrt)/.test(basename(rel))) return false;
  }
  return true;
}

function copyTree(from: string, to: string, keep: (abs: string, rel: string) => boolean): void {
  cpSync(from, to, {
    recursive: true,
    dereference: false,
    filter: (src) => {
      const rel = relative(from, src);
      if (rel === '') return true;
      if (rel.split(sep).includes('node_modules')) return false; // nested deps are copied as packages of their own
      return keep(src, rel);
    },
  });
}

/**
 * Copy the runtime and its production closure into `dest` (which must not exist) and write package.json and
 * package-lock.json. Only packages reachable from @cvopt/runtime's dependencies are copied.
 */
export function buildRuntimeBundle(dest: string, variant: Variant): BundleResult {
  const { root, runtimeDir } = findInstallRoot();
  const lock = readJson<{ packages: Record<string, LockEntry> }>(join(root, 'package-lock.json'));
  const packagesRoot = realpathSync(join(runtimeDir, '..'));
  mkdirSync(dest, { recursive: true });

  const workspaces = new Map<string, { dir: string; pkg: PackageJson }>();
  const thirdParty = new Map<string, { dir: string; pkg: PackageJson }>(); // key: path relative to root
  const queue: { name: string; from: string; optional: boolean }[] = [];
  const runtimePkg = readJson<PackageJson>(join(runtimeDir, 'package.json'));
  workspaces.set(runtimePkg.name, { dir: runtimeDir, pkg: runtimePkg });
  const enqueue = (pkg: PackageJson, from: string) => {
    for (const name of Object.keys(pkg.dependencies ?? {})) queue.push({ name, from, optional: false });
    for (const name of Object.keys(pkg.optionalDependencies ?? {})) queue.push({ name, from, optional: true });
    for (const [name, meta] of Object.entries(pkg.peerDependenciesMeta ?? {})) if (meta.optional) queue.push({ name, from, optional: true });
    for (const name of Object.keys(pkg.peerDependencies ?? {})) if (!pkg.peerDependenciesMeta?.[name]?.optional) queue.push({ name, from, optional: false });
  };
  enqueue(runtimePkg, runtimeDir);
  while (queue.length > 0) {
    const { name, from, optional } = queue.shift()!;
    const found = locate(name, from, root);
    if (!found) {
      if (optional) continue; // another platform's optional binary
      throw new CvoptError('DEPENDENCY_MISSING', `${name} (needed by the runtime, from ${relative(root, from) || '.'}) is not installed`, { hint: 'run `npm ci` at the repository root' });
    }
    const real = realpathSync(found);
    const pkg = readJson<PackageJson>(join(found, 'package.json'));
    if (real.startsWith(packagesRoot + sep)) {
      if (!workspaces.has(pkg.name)) {
        workspaces.set(pkg.name, { dir: real, pkg });
        enqueue(pkg, real);
      }
      continue;
    }
    const key = relative(root, found);
    if (!thirdParty.has(key)) {
      thirdParty.set(key, { dir: found, pkg });
      enqueue(pkg, found);
    }
  }

  // cvopt packages: package.json + dist (JavaScript only) under vendor/<short name>, linked from node_modules.
  const lockPackages: Record<string, LockEntry> = {};
  const vendorOf = (name: string) => `vendor/${name.replace(/^@cvopt\//, '')}`;
  for (const [name, { dir, pkg }] of workspaces) {
    const to = join(dest, vendorOf(name));
    mkdirSync(to, { recursive: true });
    copyTree(join(dir, 'dist'), join(to, 'dist'), (abs) => keepFile(abs));
    dropSourceMapComments(join(to, 'dist'));
    const deps = Object.fromEntries(Object.entries(pkg.dependencies ?? {}).map(([d, v]) => [d, workspaces.has(d) ? `file:../${vendorOf(d).slice('vendor/'.length)}` : v]));
    const slim: PackageJson = { name, version: pkg.version, type: 'module', license: pkg.license as string, exports: pkg.exports, dependencies: deps };
    writeFileSync(join(to, 'package.json'), `${JSON.stringify(slim, null, 2)}\n`);
    const link = join(dest, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(relative(dirname(link), to), link);
    lockPackages[`node_modules/${name}`] = { resolved: vendorOf(name), link: true };
    lockPackages[vendorOf(name)] = { name, version: pkg.version, license: pkg.license, dependencies: deps };
  }

  const versions: Record<string, string> = {};
  for (const [key, { dir, pkg }] of thirdParty) {
    const isOrt = pkg.name === 'onnxruntime-node';
    copyTree(dir, join(dest, key), (abs, rel) => keepFile(abs) && (!isOrt || keepOrtFile(rel, variant)));
    const entry = lock.packages[key];
    if (!entry) throw new CvoptError('DEPENDENCY_MISSING', `${key} is installed but not in package-lock.json`, { hint: 'run `npm ci` so the tree matches the lockfile' });
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...kept } = entry;
    lockPackages[key] = kept;
    versions[key] = pkg.version;
  }

  const topDeps = Object.fromEntries([...workspaces.keys()].filter((n) => n === runtimePkg.name).map((n) => [n, `file:${vendorOf(n)}`]));
  const manifest = { name: 'cvopt-service', version: runtimePkg.version, private: true, type: 'module', dependencies: topDeps };
  writeFileSync(join(dest, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const lockfile = {
    name: manifest.name,
    version: manifest.version,
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: manifest.name, version: manifest.version, dependencies: topDeps }, ...sortKeys(lockPackages) },
  };
  writeFileSync(join(dest, 'package-lock.json'), `${JSON.stringify(lockfile, null, 2)}\n`);
  return { main: `${vendorOf(runtimePkg.name)}/dist/main.js`, workspaces: [...workspaces.keys()].sort(), packages: versions };
}

/** The maps stay out of the bundle, so their `//# sourceMappingURL=` comments would point at nothing. */
function dropSourceMapComments(dir: string): void {
  for (const rel of listTree(dir)) {
    if (!rel.endsWith('.js')) continue;
    const file = join(dir, rel);
    const text = readFileSync(file, 'utf8');
    const stripped = text.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
    if (stripped !== text) writeFileSync(file, stripped);
  }
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Remove a directory tree if present (used for the temporary build folder). */
export function removeTree(dir: string): void {
  if (existsSync(dir) || isLink(dir)) rmSync(dir, { recursive: true, force: true });
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out;
}
