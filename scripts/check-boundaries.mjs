#!/usr/bin/env node
// Enforces the dependency direction of DESIGN.md at build time: a package may import only the cvopt packages
// listed for it here AND declared in its package.json, and never reach into another package by relative path.
// Then, transitively: through any chain of cvopt dependencies, a package must not reach those in NEVER_REACHES
// (the runtime bundle ships without training, GA, benchmark, dataset or packaging code).
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const ALLOWED = {
  core: [],
  vision: ['core'],
  datasets: ['core', 'vision'],
  engines: ['core', 'vision'],
  onnx: ['core', 'vision', 'datasets', 'engines'],
  optimizer: ['core'],
  // The job system knows handlers only through the registry a process entry hands it: never platform.
  jobs: ['core'],
  bench: ['core', 'vision', 'datasets', 'engines', 'onnx', 'trainer-client'],
  runtime: ['core', 'vision', 'engines'],
  packager: ['core', 'onnx', 'engines'],
  platform: ['core', 'vision', 'datasets', 'engines', 'onnx', 'optimizer', 'bench', 'packager', 'trainer-client'],
  'trainer-client': ['core'],
  // The control plane submits jobs by kind + payload (core's JobService); it never imports handlers, so it starts without PyTorch.
  server: ['core', 'datasets', 'onnx', 'runtime', 'jobs'],
  cli: ['core', 'vision', 'datasets', 'engines', 'onnx', 'optimizer', 'bench', 'packager', 'runtime', 'platform', 'trainer-client', 'jobs', 'server'],
};

const NEVER_REACHES = {
  runtime: ['trainer-client', 'platform', 'optimizer', 'bench', 'datasets', 'packager'],
  engines: ['trainer-client', 'platform', 'optimizer', 'bench', 'datasets', 'packager'],
  vision: ['trainer-client', 'platform', 'optimizer', 'bench', 'datasets', 'packager', 'engines', 'onnx'],
  // The job system runs handlers it is handed; it never reaches their code (DESIGN.md).
  jobs: ['platform', 'trainer-client', 'optimizer', 'bench', 'onnx', 'datasets', 'packager'],
};

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const pkgsDir = join(root, 'packages');
const problems = [];

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'dist') continue;
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const importRe = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

/** Each package's cvopt dependencies: declared in package.json (runtime deps) or imported from src/. */
const graph = new Map();
const edge = (from, to) => (graph.get(from) ?? graph.set(from, new Set()).get(from)).add(to);

for (const pkg of readdirSync(pkgsDir)) {
  const pkgDir = join(pkgsDir, pkg);
  if (!existsSync(join(pkgDir, 'package.json'))) continue;
  graph.set(pkg, graph.get(pkg) ?? new Set());
  for (const dep of Object.keys(JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).dependencies ?? {})) {
    if (dep.startsWith('@cvopt/')) edge(pkg, dep.slice('@cvopt/'.length));
  }
  const allowed = ALLOWED[pkg];
  if (!allowed) {
    problems.push(`packages/${pkg}: not in the dependency map of scripts/check-boundaries.mjs (add it, following DESIGN.md)`);
    continue;
  }
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const declared = new Set(Object.keys({ ...manifest.dependencies, ...manifest.devDependencies, ...manifest.peerDependencies }));
  for (const dir of ['src', 'test']) {
    if (!existsSync(join(pkgDir, dir))) continue;
    for (const file of walk(join(pkgDir, dir))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(importRe)) {
        const spec = m[1] ?? m[2] ?? m[3];
        const rel = relative(root, file);
        if (spec.startsWith('@cvopt/')) {
          const target = spec.slice('@cvopt/'.length).split('/')[0];
          if (dir === 'src' && target !== pkg) edge(pkg, target);
          if (spec.split('/').length > 2) problems.push(`${rel}: deep import "${spec}"; import from "@cvopt/${target}" only`);
          if (target === pkg) problems.push(`${rel}: imports its own package "${spec}"; use a relative path`);
          else if (!allowed.includes(target)) problems.push(`${rel}: "${pkg}" may not depend on "${target}" (DESIGN.md dependency direction)`);
          else if (!declared.has(`@cvopt/${target}`)) problems.push(`${rel}: uses "@cvopt/${target}" but packages/${pkg}/package.json does not declare it`);
        } else if (spec.startsWith('.')) {
          const target = resolve(dirname(file), spec);
          if (!target.startsWith(pkgDir + '/')) problems.push(`${rel}: relative import "${spec}" leaves packages/${pkg}`);
        }
      }
    }
  }
}

// Transitive reach: breadth-first from each restricted package, remembering how each package was reached.
for (const [pkg, forbidden] of Object.entries(NEVER_REACHES)) {
  if (!graph.has(pkg)) continue;
  const via = new Map([[pkg, null]]);
  const queue = [pkg];
  while (queue.length) {
    const cur = queue.shift();
    for (const next of graph.get(cur) ?? []) {
      if (via.has(next)) continue;
      via.set(next, cur);
      queue.push(next);
    }
  }
  for (const bad of forbidden) {
    if (!via.has(bad)) continue;
    const path = [];
    for (let at = bad; at !== null; at = via.get(at)) path.unshift(at);
    problems.push(`packages/${pkg} reaches "${bad}" through ${path.join(' → ')} (DESIGN.md: ${pkg} never depends on ${forbidden.join(', ')}, directly or not)`);
  }
}

if (problems.length) {
  console.error(`package boundary check failed (${problems.length}):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.error('package boundaries ok');
