import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
// Tests import sibling packages from source, so `vitest` needs no prior build.
const alias = readdirSync(`${root}packages`).map((name) => ({
  find: `@cvopt/${name}`,
  replacement: `${root}packages/${name}/src/index.ts`,
}));

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: running many ONNX Runtime sessions at once only adds noise.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
