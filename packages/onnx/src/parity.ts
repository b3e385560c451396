import type { ModelManifest } from '@cvopt/core';
import { createOrtEngine, type Engine } from '@cvopt/engines';
import { DetectionAgreement, postprocessClassification, postprocessDetections, preprocess } from '@cvopt/vision';

/** Do two models (FP32 and its INT8/FP16 conversion, or ORT vs an export) agree on real images? */

export interface OutputParity {
  name: string;
  elements: number;
  maxAbs: number;
  meanAbs: number;
  /** Mean over images of the cosine similarity of the flattened output. */
  cosine: number;
}

export interface DetectionParity {
  detectionsA: number;
  detectionsB: number;
  /** Pairs matched one-to-one at IoU ≥ 0.5 regardless of class. */
  matched: number;
  meanIou: number;
  /** Share of matched pairs with the same class. */
  classAgreement: number;
}

export interface ParityReport {
  images: number;
  outputs: OutputParity[];
  detections?: DetectionParity;
  /** Classification: share of images with the same top-1 class. */
  top1Agreement?: number;
}

export interface ParityOptions {
  /** Model B's manifest when its preprocessing differs; default: A's. */
  manifestB?: ModelManifest;
  confThreshold?: number;
  intraOpNumThreads?: number;
}

export async function compareOnnx(pathA: string, pathB: string, manifest: ModelManifest, images: readonly string[], opts: ParityOptions = {}): Promise<ParityReport> {
  const eo = opts.intraOpNumThreads ? { intraOpNumThreads: opts.intraOpNumThreads } : {};
  const manifestB = opts.manifestB ?? manifest;
  const engines: Engine[] = [];
  try {
    const a = await createOrtEngine(pathA, manifest, eo);
    engines.push(a);
    const b = await createOrtEngine(pathB, manifestB, eo);
    engines.push(b);
    const acc = new Map<string, { elements: number; maxAbs: number; absSum: number; cosSum: number }>();
    const agreement = new DetectionAgreement();
    let sameTop1 = 0;
    for (const img of images) {
      const pa = await preprocess(img, manifest.preprocess);
      const pb = manifestB === manifest ? pa : await preprocess(img, manifestB.preprocess);
      const oa = await a.run(pa.tensor, pa.dims);
      const ob = await b.run(pb.tensor, pb.dims);
      for (const [name, ta] of Object.entries(oa.outputs)) {
        const tb = ob.outputs[name];
        if (!tb || tb.data.length !== ta.data.length) continue;
        const s = acc.get(name) ?? { elements: ta.data.length, maxAbs: 0, absSum: 0, cosSum: 0 };
        let dot = 0;
        let na = 0;
        let nb = 0;
        for (let i = 0; i < ta.data.length; i++) {
          const x = ta.data[i] as number;
          const y = tb.data[i] as number;
          const d = Math.abs(x - y);
          if (d > s.maxAbs) s.maxAbs = d;
          s.absSum += d;
          dot += x * y;
          na += x * x;
          nb += y * y;
        }
        s.cosSum += na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : na === nb ? 1 : 0;
        acc.set(name, s);
      }
      if (manifest.task === 'detect') {
        const c = opts.confThreshold ?? 0.25;
        const da = postprocessDetections(oa.data, oa.dims, manifest, pa.meta, { confThreshold: c });
        const db = postprocessDetections(ob.data, ob.dims, manifestB, pb.meta, { confThreshold: c });
        agreement.add(da, db);
      } else {
        const ca = postprocessClassification(oa.data, oa.dims, manifest, 1)[0];
        const cb = postprocessClassification(ob.data, ob.dims, manifestB, 1)[0];
        if (ca && cb && ca.classId === cb.classId) sameTop1++;
      }
    }
    const n = Math.max(1, images.length);
    const report: ParityReport = {
      images: images.length,
      outputs: [...acc].map(([name, s]) => ({ name, elements: s.elements, maxAbs: s.maxAbs, meanAbs: s.absSum / (s.elements * n), cosine: s.cosSum / n })),
    };
    if (manifest.task === 'detect') report.detections = { detectionsA: agreement.reference, detectionsB: agreement.got, matched: agreement.matched, meanIou: agreement.meanIou(0), classAgreement: agreement.classAgreement(0) };
    else report.top1Agreement = sameTop1 / n;
    return report;
  } finally {
    for (const e of engines) await e.close();
  }
}
