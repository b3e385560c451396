// The light job of bench/api-load.mjs, served by `cvopt worker --handlers bench/api-load-handlers.mjs`: a real
// `cvopt check` of the model (operator report, no ONNX Runtime session), so jobs really run and finish while the
// API is under load.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { checkOnnx } from '../packages/onnx/dist/index.js';
import { CheckPayloadSchema } from '../packages/core/dist/index.js';

export const handlers = [
  {
    kind: 'check',
    queue: 'inference',
    summary: 'operator report of an ONNX model',
    payload: CheckPayloadSchema,
    result: z.object({ blocked: z.boolean(), nodes: z.number() }),
    async run(p, ctx) {
      ctx.progress({ stage: 'check', step: 0, total: 1 });
      const report = await checkOnnx(p.model, { session: false });
      if (p.out) {
        mkdirSync(dirname(p.out), { recursive: true });
        writeFileSync(p.out, JSON.stringify(report));
      }
      ctx.log('info', `${report.nodes} nodes, blocked on ${report.targets.filter((t) => t.blocked).length} targets`);
      ctx.progress({ stage: 'check', step: 1, total: 1 });
      return { blocked: report.blocked, nodes: report.nodes };
    },
  },
];
