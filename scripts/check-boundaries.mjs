#!/usr/bin/env node
// Enforces the dependency direction of DESIGN.md at build time: a package may import only the cvopt packages
// listed for it here AND declared in its package.json, and never reach into another package by relative path.
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
  bench: ['core', 'vision', 'datasets', 'engines', 'onnx'],
  runtime: ['core', 'vision', 'engines'],
  packager: ['core', 'onnx', 'engines'],
  platform: ['core', 'vision', 'datasets', 'engines', 'onnx', 'optimizer', 'bench', 'packager', 'trainer-client'],
  'trainer-client': ['core'],
  // The control plane submits jobs by kind + payload (core's JobService); it never imports handlers, so it starts without PyTorch.
  server: ['core', 'datasets', 'onnx', 'runtime', 'jobs'],
  cli: ['core', 'vision', 'datasets', 'engines', 'onnx', 'optimizer', 'bench', 'packager', 'runtime', 'platform', 'trainer-client', 'jobs', 'server'],
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

for (const pkg of readdirSync(pkgsDir)) {
  const pkgDir = join(pkgsDir, pkg);
  if (!existsSync(join(pkgDir, 'package.json'))) continue;
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

if (problems.length) {
  console.error(`package boundary check failed (${problems.length}):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.error('package boundaries ok');
