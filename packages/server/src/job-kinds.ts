import { JOB_PAYLOAD_SCHEMAS, QUEUE_OF, type JobKind } from '@cvopt/core';
import type { JobKinds } from '@cvopt/jobs';

/**
 * What the server needs to know of each job kind to submit it: its queue and payload schema, read from core's
 * JOB_PAYLOAD_SCHEMAS and QUEUE_OF — never from handler code, so the server starts without PyTorch, and a kind's
 * payload is validated by the same schema the worker's handler parses. Payloads carry no `kind`: it travels beside
 * them in submit(kind, payload).
 */
export const SERVER_JOB_KINDS: JobKinds = new Map(
  (Object.keys(JOB_PAYLOAD_SCHEMAS) as JobKind[]).map((kind) => [kind, { queue: QUEUE_OF[kind], payload: JOB_PAYLOAD_SCHEMAS[kind] }]),
);
