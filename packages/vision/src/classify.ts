import { CvoptError, type ClassScore, type ModelManifest } from '@cvopt/core';

/** Numerically stable softmax (max subtracted first). */
export function softmax(logits: ArrayLike<number>): Float32Array {
  const n = logits.length;
  const out = new Float32Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(logits[i]! - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) out[i] = out[i]! / sum;
  return out;
}

/** The k highest scores, descending; ties keep the lower class id first. */
export function topK(scores: ArrayLike<number>, k: number): ClassScore[] {
  const kk = Math.max(0, Math.min(k, scores.length));
  const top: ClassScore[] = [];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (top.length === kk && (kk === 0 || s <= top[kk - 1]!.score)) continue;
    let j = top.length < kk ? top.length : kk - 1;
    while (j > 0 && top[j - 1]!.score < s) j--;
    top.splice(j, 0, { classId: i, score: s });
    if (top.length > kk) top.pop();
  }
  return top;
}

export type ClassificationManifest = Pick<ModelManifest, 'output' | 'classNames'>;

/** Output [B, nc] to the top k classes of one batch item; softmax only when the model emits logits. */
export function postprocessClassification(output: Float32Array, dims: readonly number[], manifest: ClassificationManifest, k = 5, batchIndex = 0): ClassScore[] {
  const fmt = manifest.output.format;
  if (fmt !== 'logits' && fmt !== 'probabilities') {
    throw new CvoptError('MANIFEST_INVALID', `postprocessClassification: output format ${fmt} is not a classifier format`, {
      where: { field: 'output.format' },
      hint: 'use postprocessDetections for yolov8/yolox outputs',
    });
  }
  const flat = dims.length === 2 ? dims : dims.length === 4 && dims[2] === 1 && dims[3] === 1 ? [dims[0]!, dims[1]!] : undefined;
  if (!flat || flat[1] !== manifest.classNames.length || output.length < flat[0]! * flat[1]!) {
    throw new CvoptError('TENSOR_SHAPE', `postprocessClassification: output dims [${dims.join(', ')}] do not match [B, ${manifest.classNames.length}]`, {
      hint: 'check model.json classNames against the model output',
    });
  }
  if (batchIndex < 0 || batchIndex >= flat[0]!) throw new CvoptError('INVALID_ARGUMENT', `batch index ${batchIndex} is outside batch of ${flat[0]}`);
  const nc = flat[1]!;
  const row = output.subarray(batchIndex * nc, (batchIndex + 1) * nc);
  return topK(fmt === 'logits' ? softmax(row) : row, k);
}

export interface ClassificationMetrics {
  top1: number;
  top5: number;
  n: number;
}

/** Top-1 and top-5 accuracy; each prediction list need not be sorted. */
export function classificationMetrics(pred: readonly (readonly ClassScore[])[], labels: readonly number[]): ClassificationMetrics {
  if (pred.length !== labels.length) {
    throw new CvoptError('INVALID_ARGUMENT', `classificationMetrics: ${pred.length} predictions for ${labels.length} labels`);
  }
  let top1 = 0;
  let top5 = 0;
  for (let i = 0; i < pred.length; i++) {
    const ranked = [...pred[i]!].sort((a, b) => b.score - a.score);
    const label = labels[i]!;
    if (ranked[0]?.classId === label) top1++;
    if (ranked.slice(0, 5).some((c) => c.classId === label)) top5++;
  }
  const n = pred.length;
  return { top1: n ? top1 / n : 0, top5: n ? top5 / n : 0, n };
}
