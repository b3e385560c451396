import { z } from 'zod';
import { CvoptError, parseWith, readRegularFile } from '@cvopt/core';
import { COCO_PARAMS, COCO_STAT_NAMES, EvalInput, cocoStats, runCocoEval, summarize, type EvalResult } from './cocoeval.js';

const Bbox = z.tuple([z.number(), z.number(), z.number().min(0), z.number().min(0)]);

/** The parts of a COCO instances file that bbox evaluation reads; other fields (segmentation, info…) pass through. */
export const CocoGroundTruthSchema = z.object({
  images: z.array(z.looseObject({ id: z.number() })),
  annotations: z.array(
    z.looseObject({
      id: z.number(),
      image_id: z.number(),
      category_id: z.number(),
      bbox: Bbox,
      /** Drives the small/medium/large ranges; defaults to the box area when absent. */
      area: z.number().min(0).optional(),
      iscrowd: z.union([z.literal(0), z.literal(1), z.boolean()]).optional(),
    }),
  ),
  categories: z.array(z.looseObject({ id: z.number(), name: z.string().optional() })),
});
export type CocoGroundTruthJson = z.input<typeof CocoGroundTruthSchema>;

/** One entry of a COCO results file (bbox task). */
export const CocoResultSchema = z.looseObject({
  image_id: z.number(),
  category_id: z.number(),
  bbox: Bbox,
  score: z.number(),
});
export type CocoResultJson = z.input<typeof CocoResultSchema>;

export interface CocoCategoryResult {
  categoryId: number;
  name?: string;
  /** AP@[.50:.95], AP@.50, AP@.75 and AR@100, all areas; -1 when the category has no ground truth. */
  ap: number;
  ap50: number;
  ap75: number;
  ar100: number;
  /** Non-crowd ground truths. */
  numGt: number;
}

export interface CocoEvalSummary {
  /** COCOeval.stats: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl. */
  stats: number[];
  names: string[];
  perCategory: CocoCategoryResult[];
}

export interface CocoEvalOptions {
  /** Evaluate only these image ids (pycocotools' params.imgIds); default all GT images. */
  imageIds?: readonly number[];
  /** Where the data came from, for error messages. */
  gtFile?: string;
  dtFile?: string;
}

/**
 * pycocotools-compatible bbox evaluation of a results list against a COCO ground truth. Like pycocotools'
 * loadRes, each detection's area is its box area and a result on an image the GT does not have is an error;
 * results for categories the GT does not list are not evaluated. A GT `ignore` field has no effect
 * (pycocotools overwrites it with `iscrowd`).
 */
export function cocoEvaluate(gt: CocoGroundTruthJson, dt: readonly CocoResultJson[], opts: CocoEvalOptions = {}): CocoEvalSummary {
  const imgIds = [...new Set(opts.imageIds ?? gt.images.map((i) => i.id))].sort((a, b) => a - b);
  const catIds = [...new Set(gt.categories.map((c) => c.id))].sort((a, b) => a - b);
  const imgIndex = new Map(imgIds.map((id, i) => [id, i]));
  const catIndex = new Map(catIds.map((id, i) => [id, i]));
  const known = new Set(gt.images.map((i) => i.id));
  const K = catIds.length;
  const input = new EvalInput(imgIds.length, K);
  for (const a of gt.annotations) {
    const i = imgIndex.get(a.image_id);
    const k = catIndex.get(a.category_id);
    if (i === undefined || k === undefined) continue;
    const [x, y, w, h] = a.bbox;
    input.addGt(i, k, x, y, w, h, a.area ?? w * h, a.iscrowd === 1 || a.iscrowd === true);
  }
  dt.forEach((d, n) => {
    if (!known.has(d.image_id)) {
      throw new CvoptError('DATASET_INVALID', `results entry ${n} is for image_id ${d.image_id}, which the ground truth does not contain`, {
        where: { ...(opts.dtFile ? { file: opts.dtFile } : {}), field: `[${n}].image_id` },
        hint: 'evaluate against the annotation file the detections were made for',
      });
    }
    const i = imgIndex.get(d.image_id);
    const k = catIndex.get(d.category_id);
    if (i === undefined || k === undefined) return;
    input.addDt(i, k, d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3], d.score);
  });
  const res = runCocoEval(input, COCO_PARAMS);
  const names = new Map(gt.categories.map((c) => [c.id, c.name]));
  return { stats: cocoStats(res), names: [...COCO_STAT_NAMES], perCategory: perCategory(res, catIds, names) };
}

function perCategory(res: EvalResult, catIds: readonly number[], names: Map<number, string | undefined>): CocoCategoryResult[] {
  return catIds.map((id, k) => {
    const name = names.get(id);
    return {
      categoryId: id,
      ...(name === undefined ? {} : { name }),
      ap: summarize(res, { ap: true, area: 0, maxDets: 100, category: k }),
      ap50: summarize(res, { ap: true, iouThr: 0.5, area: 0, maxDets: 100, category: k }),
      ap75: summarize(res, { ap: true, iouThr: 0.75, area: 0, maxDets: 100, category: k }),
      ar100: summarize(res, { ap: false, area: 0, maxDets: 100, category: k }),
      numGt: res.matches[k]?.numGt ?? 0,
    };
  });
}

/** Largest COCO JSON read: about the longest string V8 makes. */
const MAX_COCO_JSON_BYTES = 512 << 20;

async function readJson(file: string, what: string): Promise<unknown> {
  // regular files only, and no larger than a JavaScript string can be (COCO's train annotations are ~450 MB)
  const r = readRegularFile(file, MAX_COCO_JSON_BYTES);
  if (!r.ok) {
    const missing = r.reason === 'missing';
    throw new CvoptError(missing ? 'NOT_FOUND' : 'DATASET_INVALID', missing ? `${what} ${file} does not exist` : `cannot read ${what} ${file}: it ${r.message}`, {
      where: { file },
      hint: 'check the path',
    });
  }
  const text = r.bytes.toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const at = /position (\d+)/.exec(msg);
    const line = at ? text.slice(0, Number(at[1])).split('\n').length : undefined;
    throw new CvoptError('DATASET_INVALID', `${what} ${file} is not valid JSON: ${msg}`, {
      where: line === undefined ? { file } : { file, line },
      hint: 'fix the JSON syntax at the reported position',
    });
  }
}

/** Reads, validates and evaluates a COCO ground-truth file and a COCO results file. */
export async function cocoEvaluateFiles(gtPath: string, dtPath: string, opts: Omit<CocoEvalOptions, 'gtFile' | 'dtFile'> = {}): Promise<CocoEvalSummary> {
  const [gtRaw, dtRaw] = await Promise.all([readJson(gtPath, 'COCO ground truth'), readJson(dtPath, 'COCO results')]);
  const gt = parseWith(CocoGroundTruthSchema, gtRaw, {
    what: `COCO ground truth ${gtPath}`,
    file: gtPath,
    code: 'DATASET_INVALID',
    hint: 'a COCO instances file has images[{id}], annotations[{id, image_id, category_id, bbox:[x,y,w,h], area, iscrowd}] and categories[{id, name}]',
  });
  const dt = parseWith(z.array(CocoResultSchema), dtRaw, {
    what: `COCO results ${dtPath}`,
    file: dtPath,
    code: 'DATASET_INVALID',
    hint: 'a COCO results file is a JSON array of {image_id, category_id, bbox:[x,y,w,h], score}',
  });
  return cocoEvaluate(gt, dt, { ...opts, gtFile: gtPath, dtFile: dtPath });
}
