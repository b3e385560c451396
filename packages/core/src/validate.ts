import type { z } from 'zod';
import { CvoptError, type ErrorCode } from './errors.js';

/**
 * Parse untrusted data at an edge (file, flag, HTTP body). A failure becomes a CvoptError that names every
 * problem with its field path, and the file it came from when known.
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  data: unknown,
  ctx: { what: string; file?: string; code?: ErrorCode; hint?: string },
): z.infer<S> {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const path = i.path.length ? i.path.map(String).join('.') : '(root)';
    return { field: path, message: i.message };
  });
  const first = problems[0];
  const list = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
  const where: { file?: string; field?: string } = {};
  if (ctx.file) where.file = ctx.file;
  if (first) where.field = first.field;
  return fail(ctx.code ?? 'INVALID_ARGUMENT', `${ctx.what} is invalid: ${list}`, where, problems, ctx.hint);
}

function fail(
  code: ErrorCode,
  message: string,
  where: { file?: string; field?: string },
  problems: unknown,
  hint?: string,
): never {
  throw new CvoptError(code, message, {
    where,
    details: { problems },
    hint: hint ?? 'correct the listed fields and try again',
  });
}
