import { CvoptError } from '@cvopt/core';
import { SearchSpace, type ChoiceValue, type Genome, type ParamSpec } from './space.js';

/**
 * The default detector-tuning space: the hyperparameter names and ranges of the Ultralytics tuner, each with
 * the Ultralytics training default (so the defaults are one genome of generation 1), plus the input size.
 */
export const HYP_SPACE: readonly ParamSpec[] = [
  { name: 'lr0', type: 'logfloat', low: 1e-5, high: 1e-1, default: 0.01 },
  { name: 'lrf', type: 'float', low: 0.0001, high: 0.1, default: 0.01 },
  { name: 'momentum', type: 'float', low: 0.7, high: 0.98, default: 0.937 },
  { name: 'weight_decay', type: 'float', low: 0, high: 0.001, default: 0.0005 },
  { name: 'warmup_epochs', type: 'float', low: 0, high: 5, default: 3 },
  { name: 'warmup_momentum', type: 'float', low: 0, high: 0.95, default: 0.8 },
  { name: 'box', type: 'float', low: 1, high: 20, default: 7.5 },
  { name: 'cls', type: 'float', low: 0.2, high: 4, default: 0.5 },
  { name: 'dfl', type: 'float', low: 0.4, high: 6, default: 1.5 },
  { name: 'hsv_h', type: 'float', low: 0, high: 0.1, default: 0.015 },
  { name: 'hsv_s', type: 'float', low: 0, high: 0.9, default: 0.7 },
  { name: 'hsv_v', type: 'float', low: 0, high: 0.9, default: 0.4 },
  { name: 'degrees', type: 'float', low: 0, high: 45, default: 0 },
  { name: 'translate', type: 'float', low: 0, high: 0.9, default: 0.1 },
  { name: 'scale', type: 'float', low: 0, high: 0.95, default: 0.5 },
  { name: 'shear', type: 'float', low: 0, high: 10, default: 0 },
  { name: 'perspective', type: 'float', low: 0, high: 0.001, default: 0 },
  { name: 'flipud', type: 'float', low: 0, high: 1, default: 0 },
  { name: 'fliplr', type: 'float', low: 0, high: 1, default: 0.5 },
  { name: 'mosaic', type: 'float', low: 0, high: 1, default: 1 },
  { name: 'mixup', type: 'float', low: 0, high: 1, default: 0 },
  { name: 'close_mosaic', type: 'int', low: 0, high: 10, default: 10 },
];

export interface TuneSpace {
  space: SearchSpace;
  /** Parameters the user pinned to one value: passed to every trial, not searched. */
  fixed: Genome;
}

const RANGE_KEYS = new Set(['low', 'high', 'log', 'default']);
const CHOICE_KEYS = new Set(['choices', 'default']);

/**
 * The tuning space for a run whose default input size is `imgsz`: HYP_SPACE, plus `imgsz` as a choice of the
 * multiples of 32 from imgsz/2 to imgsz, then the user's overrides (the parsed YAML object). An override is
 * either a fixed value (`mosaic: 0`), a range (`lr0: {low: 1e-4, high: 1e-2, log: true}`) or a choice list
 * (`imgsz: {choices: [96, 128]}`). Unknown names, unknown keys and bad bounds fail with the field path.
 */
export function tuneSpace(imgsz: number, overrides?: unknown): TuneSpace {
  if (!Number.isInteger(imgsz) || imgsz < 32 || imgsz % 32 !== 0) {
    throw invalid('imgsz', `imgsz must be a positive multiple of 32, got ${imgsz}`);
  }
  const byName = new Map<string, ParamSpec>(HYP_SPACE.map((p) => [p.name, { ...p }]));
  const sizes: number[] = [];
  for (let s = Math.max(32, Math.ceil(imgsz / 2 / 32) * 32); s <= imgsz; s += 32) sizes.push(s);
  byName.set('imgsz', { name: 'imgsz', type: 'choice', choices: sizes, default: imgsz });
  const fixed: Genome = {};

  if (overrides !== undefined && overrides !== null) {
    if (typeof overrides !== 'object' || Array.isArray(overrides)) {
      throw invalid('(root)', 'the search space file must be a mapping of parameter name to range, choices or value');
    }
    for (const [name, raw] of Object.entries(overrides as Record<string, unknown>)) {
      const base = byName.get(name);
      if (!base) {
        throw invalid(name, `unknown hyperparameter "${name}"`, `known names: ${[...byName.keys()].join(', ')}`);
      }
      if (typeof raw === 'number' || typeof raw === 'string' || typeof raw === 'boolean') {
        fixed[name] = checkFixed(base, raw);
        byName.delete(name);
        continue;
      }
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        throw invalid(name, `"${name}" must be a value, {low, high[, log]} or {choices: [...]}`);
      }
      const o = raw as Record<string, unknown>;
      byName.set(name, 'choices' in o ? choiceOverride(name, base, o) : rangeOverride(name, base, o));
    }
  }
  const params = [...byName.values()];
  if (params.length === 0) throw invalid('(root)', 'every parameter is fixed: nothing is left to tune');
  return { space: new SearchSpace(params), fixed };
}

function checkFixed(base: ParamSpec, v: ChoiceValue): ChoiceValue {
  if (base.name === 'imgsz') {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 32 || v % 32 !== 0) throw invalid('imgsz', `imgsz must be a positive multiple of 32, got ${String(v)}`);
    return v;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(base.name, `"${base.name}" must be a number, got ${JSON.stringify(v)}`);
  if (base.type === 'int' && !Number.isInteger(v)) throw invalid(base.name, `"${base.name}" must be an integer, got ${v}`);
  return v;
}

function rangeOverride(name: string, base: ParamSpec, o: Record<string, unknown>): ParamSpec {
  for (const k of Object.keys(o)) if (!RANGE_KEYS.has(k)) throw invalid(`${name}.${k}`, `unknown key "${k}" (use low, high, log, default or choices)`);
  if (base.type === 'choice') throw invalid(name, `"${name}" is a choice: give {choices: [...]}`);
  const low = o.low ?? base.low;
  const high = o.high ?? base.high;
  if (typeof low !== 'number' || !Number.isFinite(low)) throw invalid(`${name}.low`, `low must be a number, got ${JSON.stringify(low)}`);
  if (typeof high !== 'number' || !Number.isFinite(high)) throw invalid(`${name}.high`, `high must be a number, got ${JSON.stringify(high)}`);
  if (low > high) throw invalid(`${name}.low`, `low ${low} is above high ${high}`);
  if (o.log !== undefined && typeof o.log !== 'boolean') throw invalid(`${name}.log`, 'log must be true or false');
  const log = o.log ?? base.type === 'logfloat';
  if (log && low <= 0) throw invalid(`${name}.low`, `a log-scaled range needs low > 0, got ${low}`);
  if (base.type === 'int' && (!Number.isInteger(low) || !Number.isInteger(high))) {
    throw invalid(`${name}.low`, `"${name}" is an integer: low and high must be integers`);
  }
  const clampDefault = (d: number) => Math.min(high, Math.max(low, d));
  let def: number;
  if (o.default !== undefined) {
    if (typeof o.default !== 'number' || o.default < low || o.default > high) {
      throw invalid(`${name}.default`, `default must be a number within [${low}, ${high}], got ${JSON.stringify(o.default)}`);
    }
    def = o.default;
  } else def = clampDefault(base.default ?? low);
  if (base.type === 'int') return { name, type: 'int', low, high, default: Math.round(def) };
  return { name, type: log ? 'logfloat' : 'float', low, high, default: def };
}

function choiceOverride(name: string, base: ParamSpec, o: Record<string, unknown>): ParamSpec {
  for (const k of Object.keys(o)) if (!CHOICE_KEYS.has(k)) throw invalid(`${name}.${k}`, `unknown key "${k}" next to choices (use choices, default)`);
  const choices = o.choices;
  if (!Array.isArray(choices) || choices.length === 0) throw invalid(`${name}.choices`, 'choices must be a non-empty list');
  choices.forEach((c, i) => {
    if (name === 'imgsz') {
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 32 || c % 32 !== 0) {
        throw invalid(`${name}.choices.${i}`, `input sizes must be positive multiples of 32, got ${JSON.stringify(c)}`);
      }
    } else if (typeof c !== 'number' || !Number.isFinite(c)) throw invalid(`${name}.choices.${i}`, `choices of "${name}" must be numbers`);
  });
  const list = choices as number[];
  let def = o.default ?? base.default;
  if (o.default !== undefined && !list.includes(o.default as number)) {
    throw invalid(`${name}.default`, `default ${JSON.stringify(o.default)} is not one of the choices`);
  }
  if (!list.includes(def as number)) def = list[list.length - 1];
  return { name, type: 'choice', choices: list, default: def as number };
}

function invalid(field: string, message: string, hint = 'fix the search space file (see the Tune section of README.md)'): CvoptError {
  return new CvoptError('INVALID_CONFIG', message, { where: { field }, hint });
}
