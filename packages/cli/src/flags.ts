import { z } from 'zod';
import { CvoptError, ENGINE_IDS } from '@cvopt/core';

/**
 * Every command's flags are validated here, by zod, in one place: a command declares the shape of its options with
 * these builders and calls parseFlags; a bad value is INVALID_ARGUMENT naming the flag, the rule and what was given.
 * Commander hands every value over as a string (or true for a switch); the builders coerce.
 */

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function toNumber(v: unknown): unknown {
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return v;
}

function numberSchema(o: { int?: boolean; min?: number; max?: number; gt?: number }): z.ZodType<number> {
  let s = z.number({ error: o.int ? 'must be an integer' : 'must be a number' }).refine(Number.isFinite, o.int ? 'must be an integer' : 'must be a number');
  if (o.int) s = s.refine(Number.isInteger, 'must be an integer');
  if (o.min !== undefined) s = s.refine((n) => n >= o.min!, `must be ≥ ${o.min}`);
  if (o.gt !== undefined) s = s.refine((n) => n > o.gt!, `must be > ${o.gt}`);
  if (o.max !== undefined) s = s.refine((n) => n <= o.max!, `must be ≤ ${o.max}`);
  return s as unknown as z.ZodType<number>;
}

const splitList = (v: unknown) =>
  typeof v === 'string'
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : v;

export const flag = {
  number: (o: { min?: number; max?: number; gt?: number } = {}) => z.preprocess(toNumber, numberSchema(o)),
  int: (o: { min?: number; max?: number } = {}) => z.preprocess(toNumber, numberSchema({ ...o, int: true })),
  string: () => z.string({ error: 'needs a value' }).min(1, 'needs a value'),
  switch: () => z.preprocess((v) => v === true || v === 'true', z.boolean()),
  /** An optional-value flag (`--show-labels`, `--show-labels false`): true/false, yes/no, 1/0. */
  bool: () =>
    z.preprocess(
      (v) => (v === true ? true : typeof v === 'string' ? ({ true: true, yes: true, 1: true, false: false, no: false, 0: false } as Record<string, boolean>)[v.trim().toLowerCase()] ?? v : v),
      z.boolean({ error: 'must be true or false' }),
    ),
  oneOf: <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values, { error: `must be one of ${values.join(', ')}` }),
  /** A comma list of positive integers. */
  intList: () => z.preprocess(splitList, z.array(z.preprocess(toNumber, numberSchema({ int: true, min: 1 }))).min(1, 'must list at least one value')),
  /** A comma list of strings. */
  list: () => z.preprocess(splitList, z.array(z.string())),
  /** One engine id of core's ENGINES. */
  engine: () => z.enum(ENGINE_IDS, { error: `must be an engine id: ${ENGINE_IDS.join(', ')}` }),
  /** `all` (undefined) or a comma list of engine ids. */
  engines: () =>
    z.preprocess(
      (v) => (v === 'all' || v === undefined ? undefined : splitList(v)),
      z.array(z.enum(ENGINE_IDS, { error: `must be all or a comma list of ${ENGINE_IDS.join(', ')}` })).min(1, 'must list at least one engine').optional(),
    ),
};

/** Validate a command's options against its flag shape; unknown keys (globals such as --json) pass through untouched. */
export function parseFlags<S extends z.ZodRawShape>(shape: S, opts: Record<string, unknown>): z.output<z.ZodObject<S>> {
  const r = z.object(shape).safeParse(opts);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = String(issue.path[0] ?? '');
  const given = opts[key];
  const name = `--${kebab(key)}`;
  // A bad item of a comma list is named on its own.
  const items = typeof given === 'string' ? given.split(',').map((x) => x.trim()).filter(Boolean) : [];
  const item = issue.path.length > 1 ? items[Number(issue.path[1])] : undefined;
  const what = item !== undefined ? `${name}: "${item}" ${issue.message}` : `${name} ${issue.message}${given === undefined ? '' : `, got "${String(given)}"`}`;
  throw new CvoptError('INVALID_ARGUMENT', what, {
    where: { field: name },
    ...(r.error.issues.length > 1 ? { details: { problems: r.error.issues.map((i) => ({ field: `--${kebab(String(i.path[0] ?? ''))}`, message: i.message })) } } : {}),
  });
}

/**
 * One numeric flag through the same zod rules, for code that reads a single value (`--concurrency training=2`, remote
 * submissions): `numberFlag('max-images', opts.maxImages, { int: true, min: 1 })`.
 */
export function numberFlag(name: string, value: unknown, o: { int?: boolean; min?: number; max?: number } = {}): number {
  const key = name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const range = { ...(o.min !== undefined ? { min: o.min } : {}), ...(o.max !== undefined ? { max: o.max } : {}) };
  return parseFlags({ [key]: o.int ? flag.int(range) : flag.number(range) }, { [key]: value })[key] as number;
}
