import { createHash } from 'node:crypto';
import { CvoptError, type Rng } from '@cvopt/core';

/**
 * A search space of typed parameters. Strategies never see the types: every parameter is encoded to one gene in
 * [0, 1] (log-floats on a log scale, ints and choices as equal-width bins), so one set of operators serves all,
 * and decoding is the only place where bounds, integer types and valid choices are enforced.
 */

export type ChoiceValue = number | string | boolean;
export type ParamValue = number | string | boolean;
export type Genome = Record<string, ParamValue>;

export type ParamSpec =
  | { name: string; type: 'float'; low: number; high: number; default?: number }
  | { name: string; type: 'logfloat'; low: number; high: number; default?: number }
  | { name: string; type: 'int'; low: number; high: number; default?: number }
  | { name: string; type: 'choice'; choices: readonly ChoiceValue[]; default?: ChoiceValue };

export class SearchSpace {
  readonly params: readonly ParamSpec[];

  constructor(params: readonly ParamSpec[]) {
    const seen = new Set<string>();
    for (const p of params) {
      if (seen.has(p.name)) throw bad(p.name, `parameter "${p.name}" is defined twice`);
      seen.add(p.name);
      validateParam(p);
    }
    this.params = params.map((p) => ({ ...p }));
  }

  get dim(): number {
    return this.params.length;
  }

  /** True when every parameter has a default, so the default genome can seed generation 1. */
  get hasDefaults(): boolean {
    return this.params.length > 0 && this.params.every((p) => p.default !== undefined);
  }

  defaults(): Genome {
    const g: Genome = {};
    for (const p of this.params) {
      if (p.default === undefined) throw bad(p.name, `parameter "${p.name}" has no default`);
      g[p.name] = p.default;
    }
    return g;
  }

  /** A uniform sample in gene space (uniform on the log scale for log-floats). */
  sampleGenes(rng: Rng): number[] {
    return this.params.map(() => rng.float());
  }

  decode(genes: readonly number[]): Genome {
    const g: Genome = {};
    this.params.forEach((p, i) => {
      g[p.name] = decodeOne(p, clamp01(genes[i] ?? 0.5));
    });
    return g;
  }

  /** Genes for a genome; ints and choices land in the middle of their bin so small mutations keep them. */
  encode(genome: Genome): number[] {
    return this.params.map((p) => {
      const v = genome[p.name];
      if (v === undefined) throw bad(p.name, `genome has no value for "${p.name}"`);
      return encodeOne(p, v);
    });
  }

  toJSON(): ParamSpec[] {
    return this.params.map((p) => ({ ...p }));
  }
}

function decodeOne(p: ParamSpec, u: number): ParamValue {
  switch (p.type) {
    case 'float':
      return clamp(round6(p.low + u * (p.high - p.low)), p.low, p.high);
    case 'logfloat': {
      const lo = Math.log(p.low);
      const hi = Math.log(p.high);
      return clamp(round6(Math.exp(lo + u * (hi - lo))), p.low, p.high);
    }
    case 'int':
      return p.low + Math.min(Math.floor(u * (p.high - p.low + 1)), p.high - p.low);
    case 'choice':
      return p.choices[Math.min(Math.floor(u * p.choices.length), p.choices.length - 1)]!;
  }
}

function encodeOne(p: ParamSpec, v: ParamValue): number {
  switch (p.type) {
    case 'float':
      return p.high === p.low ? 0.5 : clamp01((Number(v) - p.low) / (p.high - p.low));
    case 'logfloat':
      return p.high === p.low ? 0.5 : clamp01(Math.log(Number(v) / p.low) / Math.log(p.high / p.low));
    case 'int':
      return clamp01((Math.round(Number(v)) - p.low + 0.5) / (p.high - p.low + 1));
    case 'choice': {
      const i = p.choices.findIndex((c) => c === v);
      if (i < 0) throw bad(p.name, `"${String(v)}" is not one of the choices of "${p.name}" (${p.choices.join(', ')})`);
      return (i + 0.5) / p.choices.length;
    }
  }
}

function validateParam(p: ParamSpec): void {
  if (!p.name) throw bad('name', 'a parameter has an empty name');
  if (p.type === 'choice') {
    if (!Array.isArray(p.choices) || p.choices.length === 0) throw bad(`${p.name}.choices`, `"${p.name}" needs at least one choice`);
    if (p.default !== undefined && !p.choices.includes(p.default)) {
      throw bad(`${p.name}.default`, `default ${String(p.default)} of "${p.name}" is not one of its choices`);
    }
    return;
  }
  if (!Number.isFinite(p.low) || !Number.isFinite(p.high)) throw bad(`${p.name}.low`, `"${p.name}" needs finite low and high`);
  if (p.low > p.high) throw bad(`${p.name}.low`, `"${p.name}": low ${p.low} is above high ${p.high}`);
  if (p.type === 'logfloat' && p.low <= 0) throw bad(`${p.name}.low`, `"${p.name}" is log-scaled, so low must be > 0 (got ${p.low})`);
  if (p.type === 'int' && (!Number.isInteger(p.low) || !Number.isInteger(p.high))) {
    throw bad(`${p.name}.low`, `"${p.name}" is an int, so low and high must be integers`);
  }
  if (p.default !== undefined) {
    const d = p.default;
    if (typeof d !== 'number' || d < p.low || d > p.high || (p.type === 'int' && !Number.isInteger(d))) {
      throw bad(`${p.name}.default`, `default ${String(d)} of "${p.name}" is outside [${p.low}, ${p.high}]`);
    }
  }
}

function bad(field: string, message: string): CvoptError {
  return new CvoptError('INVALID_CONFIG', message, { where: { field }, hint: 'fix the search space definition' });
}

/** Canonical identity of a genome: sorted keys, floats at 12 significant digits, so equal genomes hash equal. */
export function genomeKey(genome: Genome): string {
  const canon = Object.keys(genome)
    .sort()
    .map((k) => {
      const v = genome[k]!;
      return [k, typeof v === 'number' ? Number(v.toPrecision(12)) : v];
    });
  return createHash('sha256').update(JSON.stringify(canon)).digest('hex').slice(0, 16);
}

export function clamp01(u: number): number {
  return Number.isNaN(u) ? 0.5 : u < 0 ? 0 : u > 1 ? 1 : u;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

// Six significant digits keep genomes readable in YAML and stable through JSON without hurting any search here.
function round6(v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(6));
}
