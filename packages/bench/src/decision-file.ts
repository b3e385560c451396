import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { CvoptError, type BenchmarkReport, type Decision, type DecisionModel } from '@cvopt/core';

/**
 * Write a decision so that it can be deployed: the winner's exact model file (and its model.json) is copied to
 * `selected/<engine>/` beside the decision, and the decision records it by relative path and sha256. Everything
 * is written to a temporary name and renamed into place only once complete, and a selection without a winner
 * goes to `<name>.rejected.json`: a failed select never overwrites a good decision.
 */
export interface WrittenDecision {
  decision: Decision;
  /** The file written: the decision, or the `.rejected.json` beside it when nothing won. */
  file: string;
  /** The winner's copied model, when there was one. */
  model?: string;
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function atomicWrite(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export function writeDecision(report: BenchmarkReport, reportFile: string, decision: Decision, out: string): WrittenDecision {
  const dir = dirname(out);
  mkdirSync(dir, { recursive: true });
  if (!decision.winner) {
    const file = out.replace(/(\.json)?$/i, '.rejected.json');
    atomicWrite(file, `${JSON.stringify(decision, null, 2)}\n`);
    return { decision, file };
  }
  const result = report.engines.find((e) => e.engine === decision.winner);
  const mf = result?.status === 'ok' ? result.modelFile : undefined;
  if (!mf) {
    // A report from before models were recorded (or a PyTorch winner): the decision stands, without a model to ship.
    atomicWrite(out, `${JSON.stringify(decision, null, 2)}\n`);
    return { decision, file: out };
  }
  if (!existsSync(mf.path)) {
    throw new CvoptError('NOT_FOUND', `the ${decision.winner} model ${mf.path} named in the report no longer exists`, {
      where: { file: reportFile, field: `engines.${decision.winner}.modelFile.path` },
      hint: 'run `cvopt bench` again; the decision was not written',
    });
  }
  const target = join(dir, 'selected', decision.winner);
  const staging = `${target}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  copyFileSync(mf.path, join(staging, 'model.onnx'));
  const copied = sha256(join(staging, 'model.onnx'));
  if (copied !== mf.sha256) {
    rmSync(staging, { recursive: true, force: true });
    throw new CvoptError('CHECKSUM_MISMATCH', `the ${decision.winner} model ${mf.path} changed since it was benchmarked (sha256 ${copied.slice(0, 12)}… instead of ${mf.sha256.slice(0, 12)}…)`, {
      where: { file: reportFile },
      hint: 'benchmark again; the decision was not written',
    });
  }
  writeFileSync(join(staging, 'model.json'), `${JSON.stringify(mf.manifest, null, 2)}\n`);
  rmSync(target, { recursive: true, force: true });
  renameSync(staging, target);

  const rel = (p: string) => relative(dir, p) || basename(p);
  const model: DecisionModel = {
    file: rel(join(target, 'model.onnx')),
    sha256: mf.sha256,
    manifest: rel(join(target, 'model.json')),
    engine: decision.winner,
    precision: mf.manifest.precision,
    settings: mf.settings,
    ...(mf.tensorrt
      ? { tensorrt: { ...mf.tensorrt, recipe: `build a TensorRT ${mf.tensorrt.precision} plan from ${rel(join(target, 'model.onnx'))} on the GPU that serves it (ONNX Runtime TensorRT provider, engine cache on)` } }
      : {}),
    report: { file: rel(reportFile), sha256: sha256(reportFile), sourceModel: { name: report.model.name ?? basename(report.model.path), sha256: report.model.sha256 } },
  };
  const full: Decision = { ...decision, model };
  atomicWrite(out, `${JSON.stringify(full, null, 2)}\n`);
  return { decision: full, file: out, model: join(target, 'model.onnx') };
}
