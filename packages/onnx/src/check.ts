import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { CvoptError } from '@cvopt/core';
import { allNodes, domainOf, opsetVersion, realInputs, valueInfoOf, DEFAULT_DOMAIN } from './inspect.js';
import { readOnnx, type LoadedOnnx } from './io.js';
import type { NodeProto } from './model.js';
import { utf8 } from './protobuf.js';
import { DT } from './tensor.js';

/** Operator support per inference target, from transcribed support matrices plus a real ORT session for the CPU. */

interface OrtTable {
  source: string;
  transcribed: string;
  maxOpset: number;
  standardOps: Record<string, number>;
  cpu: Record<string, string[]>;
  cudaMissing: string[];
  cuda: Record<string, string[]>;
}

interface TrtRestriction {
  attr: string;
  values: (string | number)[];
  message: string;
}

interface TrtVersion {
  label: string;
  maxOpset: number;
  unsupported: string[];
  int64: 'cast' | 'native';
  float64: 'unsupported';
}

interface TrtTable {
  source: string;
  transcribed: string;
  versions: Record<string, TrtVersion>;
  notes: Record<string, string>;
  restrictions: Record<string, TrtRestriction[]>;
}

const loadJson = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../data/${name}`, import.meta.url), 'utf8')) as T;
let ortTable: OrtTable | undefined;
let trtTable: TrtTable | undefined;
const ORT = (): OrtTable => (ortTable ??= loadJson<OrtTable>('ort-ops.json'));
const TRT = (): TrtTable => (trtTable ??= loadJson<TrtTable>('tensorrt-ops.json'));

export type Target = string;

export function knownTargets(): Target[] {
  return ['ort-cpu', 'ort-cuda', ...Object.keys(TRT().versions).map((v) => `tensorrt-${v}`)];
}

export const DEFAULT_TARGETS: Target[] = ['ort-cpu', 'ort-cuda', 'tensorrt-8.6', 'tensorrt-10'];

/** The targets as given, or INVALID_ARGUMENT naming the unknown ones: what `cvopt check --remote` checks before submitting. */
export function assertTargets(targets: Target[]): Target[] {
  const known = knownTargets();
  const bad = targets.filter((t) => !known.includes(t));
  if (bad.length) {
    throw new CvoptError('INVALID_ARGUMENT', `unknown target${bad.length > 1 ? 's' : ''} ${bad.join(', ')}`, { where: { field: '--targets' }, hint: `choose from ${known.join(', ')}` });
  }
  return targets;
}

export interface OpIssue {
  severity: 'blocker' | 'warning';
  /** What kind of problem: an operator, a data type, a dynamic shape, the opset, or the runtime itself. */
  kind: 'operator' | 'domain' | 'dtype' | 'dynamic-shape' | 'opset' | 'session';
  node?: string;
  opType?: string;
  domain?: string;
  opset?: number;
  tensor?: string;
  message: string;
  fix: string;
}

export interface TargetReport {
  target: Target;
  label: string;
  blocked: boolean;
  blockers: OpIssue[];
  warnings: OpIssue[];
  /** Where the verdict comes from: the transcribed table, and for ort-cpu a real session. */
  basis: string[];
}

export interface CheckReport {
  model: string;
  nodes: number;
  targets: TargetReport[];
  /** True when any requested target is blocked. */
  blocked: boolean;
}

export interface CheckOptions {
  targets?: Target[];
  /** Create a real ONNX Runtime CPU session to confirm the ort-cpu verdict (default true). */
  session?: boolean;
}

const nodeLabel = (n: NodeProto, i: number): string => (n.name ? n.name : `${n.opType}#${i}`);

const QUANT_DYNAMIC = new Set(['ConvInteger', 'MatMulInteger', 'DynamicQuantizeLinear']);

function opFix(opType: string, domain: string, target: 'ort' | 'trt'): string {
  if (QUANT_DYNAMIC.has(opType)) return 'this is dynamic quantization; start from the FP32 model and use `cvopt quantize` (static QDQ), which TensorRT and ONNX Runtime both run';
  if (opType.startsWith('QLinear')) return 'operator-oriented (QLinear*) quantization; re-quantize the FP32 model into QDQ format with `cvopt quantize`';
  if (domain === 'com.microsoft') return target === 'trt' ? 'an ONNX Runtime contrib op (often from ORT graph fusions saved to disk); export the model without ORT optimisations, or choose an ort-* target' : 'use a newer ONNX Runtime, or re-export without this contrib op';
  if (domain !== DEFAULT_DOMAIN) return `a custom op: register a ${target === 'trt' ? 'TensorRT plugin' : 'custom-op library'} for ${domain}::${opType}, or replace the op in the exporter with standard ONNX ops`;
  if (opType.startsWith('Sequence') || opType.startsWith('Optional') || opType === 'SplitToSequence' || opType === 'ConcatFromSequence') return 'sequence/optional values: export with tensors only (e.g. torch.onnx.export of a model without list outputs)';
  return `replace ${opType} with supported ops in the model or the exporter, or choose another target`;
}

interface Ctx {
  loaded: LoadedOnnx;
  nodes: NodeProto[];
}

function checkOrt(ctx: Ctx, cuda: boolean): TargetReport {
  const t = ORT();
  const blockers: OpIssue[] = [];
  const warnings: OpIssue[] = [];
  const model = ctx.loaded.model;
  const opset = opsetVersion(model, DEFAULT_DOMAIN) ?? 0;
  if (opset > t.maxOpset) {
    warnings.push({ severity: 'warning', kind: 'opset', opset, message: `opset ${opset} is newer than the ${t.maxOpset} in cvopt's ONNX Runtime table`, fix: 'the real session check decides; export with an older opset if it fails' });
  }
  const missingCuda = new Set(t.cudaMissing);
  ctx.nodes.forEach((n, i) => {
    const domain = domainOf(n);
    const base = { node: nodeLabel(n, i), opType: n.opType, domain, opset: opsetVersion(model, domain) ?? 0 };
    if (domain === DEFAULT_DOMAIN) {
      if (!(n.opType in t.standardOps)) blockers.push({ severity: 'blocker', kind: 'operator', ...base, message: `${n.opType} is not an ONNX standard operator`, fix: opFix(n.opType, domain, 'ort') });
      else if (cuda && missingCuda.has(n.opType)) warnings.push({ severity: 'warning', kind: 'operator', ...base, message: `${n.opType} has no CUDA kernel; it falls back to the CPU with copies each way`, fix: opFix(n.opType, domain, 'ort') });
      return;
    }
    const cpuOps = t.cpu[domain];
    if (!cpuOps) {
      blockers.push({ severity: 'blocker', kind: 'domain', ...base, message: `domain ${domain} is not known to ONNX Runtime`, fix: opFix(n.opType, domain, 'ort') });
      return;
    }
    if (!cpuOps.includes(n.opType)) {
      blockers.push({ severity: 'blocker', kind: 'operator', ...base, message: `${domain}::${n.opType} is not in ONNX Runtime's kernel table`, fix: opFix(n.opType, domain, 'ort') });
      return;
    }
    if (cuda && !(t.cuda[domain] ?? []).includes(n.opType)) warnings.push({ severity: 'warning', kind: 'operator', ...base, message: `${domain}::${n.opType} has no CUDA kernel; it falls back to the CPU`, fix: opFix(n.opType, domain, 'ort') });
  });
  for (const v of realInputs(model.graph)) {
    const info = valueInfoOf(v);
    if (info.dynamic && info.shape?.slice(1).some((d) => typeof d !== 'number'))
      warnings.push({ severity: 'warning', kind: 'dynamic-shape', tensor: v.name, message: `input ${v.name} has dynamic spatial/channel dims [${(info.shape ?? []).join(',')}]; buffers are re-planned for each new shape`, fix: 'export with a fixed input size (cvopt export without --dynamic) unless sizes really vary' });
  }
  return { target: cuda ? 'ort-cuda' : 'ort-cpu', label: cuda ? 'ONNX Runtime CUDA' : 'ONNX Runtime CPU', blocked: blockers.length > 0, blockers, warnings, basis: [`${t.source} (transcribed ${t.transcribed})`] };
}

function attrMatches(n: NodeProto, r: TrtRestriction): boolean {
  const a = n.attribute.find((x) => x.name === r.attr);
  if (!a) return false;
  if (r.values.includes('*')) return true;
  const v = a.i ?? a.f ?? (a.s ? utf8(a.s) : undefined);
  return v !== undefined && r.values.includes(v);
}

function checkTrt(ctx: Ctx, version: string): TargetReport {
  const t = TRT();
  const v = t.versions[version];
  if (!v) throw new CvoptError('INVALID_ARGUMENT', `unknown TensorRT version ${version}`, { hint: `known: ${Object.keys(t.versions).join(', ')}` });
  const std = ORT().standardOps;
  const unsupported = new Set(v.unsupported);
  const blockers: OpIssue[] = [];
  const warnings: OpIssue[] = [];
  const model = ctx.loaded.model;
  const opset = opsetVersion(model, DEFAULT_DOMAIN) ?? 0;
  if (opset > v.maxOpset) {
    blockers.push({ severity: 'blocker', kind: 'opset', opset, message: `the model uses opset ${opset}; the ${v.label} ONNX parser supports up to opset ${v.maxOpset}`, fix: `re-export with opset ≤ ${v.maxOpset} (cvopt export --opset ${v.maxOpset})` });
  }
  ctx.nodes.forEach((n, i) => {
    const domain = domainOf(n);
    const base = { node: nodeLabel(n, i), opType: n.opType, domain, opset: opsetVersion(model, domain) ?? 0 };
    if (domain !== DEFAULT_DOMAIN) {
      blockers.push({ severity: 'blocker', kind: 'domain', ...base, message: `${domain}::${n.opType} is outside the ONNX standard domain; ${v.label} runs it only through a registered plugin`, fix: opFix(n.opType, domain, 'trt') });
      return;
    }
    if (!(n.opType in std) || unsupported.has(n.opType)) {
      blockers.push({ severity: 'blocker', kind: 'operator', ...base, message: `${n.opType} is not supported by the ${v.label} ONNX parser`, fix: opFix(n.opType, domain, 'trt') });
      return;
    }
    for (const r of t.restrictions[n.opType] ?? []) {
      if (attrMatches(n, r)) blockers.push({ severity: 'blocker', kind: 'operator', ...base, message: `${n.opType}: ${r.message} in ${v.label}`, fix: `change the ${r.attr} attribute in the exporter, or choose an ort-* target` });
    }
    if ((n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear') && n.input[2]) {
      const zp = model.graph.initializer.find((x) => x.name === n.input[2]);
      if (zp && zp.dataType === DT.UINT8) blockers.push({ severity: 'blocker', kind: 'dtype', ...base, message: `${n.opType} uses a uint8 zero point; ${v.label} takes symmetric int8 QDQ only`, fix: 'quantize with symmetric int8 activations (cvopt quantize --activations int8)' });
    }
  });
  // Data types TensorRT lacks: float64 everywhere, int64 before 10.x (cast down with a range risk).
  for (const init of model.graph.initializer) {
    if (init.dataType === DT.DOUBLE) blockers.push({ severity: 'blocker', kind: 'dtype', tensor: init.name ?? '', message: `initializer ${init.name ?? ''} is float64, which ${v.label} does not support`, fix: 'cast weights to float32 before export (model.float() in PyTorch)' });
    else if (init.dataType === DT.INT64 && v.int64 === 'cast' && init.dims.reduce((a, b) => a * b, 1) > 64)
      warnings.push({ severity: 'warning', kind: 'dtype', tensor: init.name ?? '', message: `initializer ${init.name ?? ''} is a large int64 tensor; ${v.label} casts it to int32 and clamps values outside its range`, fix: 'store indices as int32 where the op allows it' });
    else if (init.dataType === DT.STRING) blockers.push({ severity: 'blocker', kind: 'dtype', tensor: init.name ?? '', message: `initializer ${init.name ?? ''} holds strings`, fix: 'strings cannot run on TensorRT; move string handling out of the model' });
  }
  for (const io of [...realInputs(model.graph), ...model.graph.output]) {
    const info = valueInfoOf(io);
    if (info.dtype === 'float64') blockers.push({ severity: 'blocker', kind: 'dtype', tensor: io.name, message: `${io.name} is float64, which ${v.label} does not support`, fix: 'export with float32 inputs and outputs' });
    if (info.dtype === 'int64' && v.int64 === 'cast') warnings.push({ severity: 'warning', kind: 'dtype', tensor: io.name, message: `${io.name} is int64; ${v.label} binds it as int32`, fix: 'use int32 or float32 graph inputs/outputs' });
  }
  for (const inp of realInputs(model.graph)) {
    const info = valueInfoOf(inp);
    if (info.dynamic)
      warnings.push({ severity: 'warning', kind: 'dynamic-shape', tensor: inp.name, message: `input ${inp.name} has dynamic dims [${(info.shape ?? []).map((d) => d ?? '?').join(',')}] without bounds; ${v.label} needs an optimisation profile (min/opt/max) and tunes kernels for opt only`, fix: 'export with a fixed size, or give the engine build explicit min/opt/max shapes' });
  }
  const notesSeen = new Set<string>();
  for (const n of ctx.nodes) {
    const note = t.notes[n.opType];
    if (note && !notesSeen.has(n.opType) && !unsupported.has(n.opType) && domainOf(n) === DEFAULT_DOMAIN) {
      notesSeen.add(n.opType);
      warnings.push({ severity: 'warning', kind: 'operator', opType: n.opType, domain: DEFAULT_DOMAIN, message: `${n.opType} (${ctx.nodes.filter((x) => x.opType === n.opType).length} nodes): ${note}`, fix: 'check the restriction against the node attributes if the engine build fails' });
    }
  }
  return { target: `tensorrt-${version}`, label: v.label, blocked: blockers.length > 0, blockers, warnings, basis: [`${t.source} (transcribed ${t.transcribed})`] };
}

async function ortSessionCheck(report: TargetReport, path: string): Promise<void> {
  report.basis.push(`onnxruntime-node ${ort.env.versions.common} InferenceSession on this machine`);
  try {
    const s = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'basic', logSeverityLevel: 3 });
    await s.release();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    report.blockers.push({ severity: 'blocker', kind: 'session', message: `ONNX Runtime could not load the model: ${msg.trim()}`, fix: 'fix the listed node or type in the exporter; the message names the first failure ONNX Runtime met' });
    report.blocked = true;
  }
}

/** The operator report: every node each target cannot run, plus what makes an engine slow or fragile. */
export async function checkOnnx(pathOrLoaded: string | LoadedOnnx, opts: CheckOptions = {}): Promise<CheckReport> {
  const loaded = typeof pathOrLoaded === 'string' ? readOnnx(pathOrLoaded) : pathOrLoaded;
  const targets = assertTargets(opts.targets ?? DEFAULT_TARGETS);
  const ctx: Ctx = { loaded, nodes: [...allNodes(loaded.model.graph)] };
  const reports: TargetReport[] = [];
  for (const target of targets) {
    if (target === 'ort-cpu' || target === 'ort-cuda') {
      const r = checkOrt(ctx, target === 'ort-cuda');
      if (target === 'ort-cpu' && opts.session !== false) await ortSessionCheck(r, loaded.path);
      reports.push(r);
    } else reports.push(checkTrt(ctx, target.slice('tensorrt-'.length)));
  }
  return { model: loaded.path, nodes: ctx.nodes.length, targets: reports, blocked: reports.some((r) => r.blocked) };
}
