import { z } from 'zod';
import { BenchJobSchema, ConstraintsSchema, ExportJobSchema, PackagePayloadSchema, QUEUE_OF, TrainJobSchema, TuneJobSchema, type QueueName } from '@cvopt/core';
import type { JobKinds } from '@cvopt/jobs';

/**
 * What the server needs to know of each job kind to submit it: queue and payload schema — from core's job
 * schemas, never from handler code, so the server starts without PyTorch. check, quantize and select have no
 * payload schema in core yet; theirs are here, shaped after the CLI's flags (move them to core when the
 * handlers land). Payloads carry no `kind`: it travels beside them in submit(kind, payload). When core's
 * per-kind payload table (JOB_PAYLOAD_SCHEMAS + QUEUE_OF) lands, this table becomes a view of it.
 */
export const CheckJobSchema = z.object({ model: z.string().min(1), out: z.string().min(1).optional(), targets: z.array(z.string()).optional() });
export const QuantizeJobSchema = z.object({
  model: z.string().min(1),
  data: z.string().min(1),
  out: z.string().min(1),
  method: z.enum(['minmax', 'percentile', 'entropy']).default('minmax'),
  calib: z.number().int().positive().optional(),
});
export const SelectJobSchema = z.object({ report: z.string().min(1), out: z.string().min(1).optional(), constraints: ConstraintsSchema.optional() });

const table: [string, QueueName, z.ZodType][] = [
  ['train', QUEUE_OF.train, TrainJobSchema.omit({ kind: true })],
  ['tune', QUEUE_OF.tune, TuneJobSchema.omit({ kind: true })],
  ['export', QUEUE_OF.export, ExportJobSchema.omit({ kind: true })],
  ['bench', QUEUE_OF.bench, BenchJobSchema.omit({ kind: true })],
  ['package', QUEUE_OF.package, PackagePayloadSchema],
  ['check', 'inference', CheckJobSchema],
  ['quantize', 'packaging', QuantizeJobSchema],
  ['select', 'inference', SelectJobSchema],
];

export const SERVER_JOB_KINDS: JobKinds = new Map(table.map(([kind, queue, payload]) => [kind, { queue, payload }]));
