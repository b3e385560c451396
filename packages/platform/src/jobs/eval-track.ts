import { z } from 'zod';
import { EvalTrackPayloadSchema, QUEUE_OF, type EvalTrackPayload, type JobHandler } from '@cvopt/core';
import { DEFAULT_BYTETRACK, motMetrics, readMotFile, type MotMetrics } from '@cvopt/vision';

/** `cvopt eval-track`: CLEAR-MOT and identity metrics of a tracker's MOTChallenge file against ground truth. */
export type EvalTrackResult = MotMetrics & { gtFile: string; predFile: string };

export function evaluateTracks(input: EvalTrackPayload): EvalTrackResult {
  const o = EvalTrackPayloadSchema.parse(input);
  const m = motMetrics(readMotFile(o.gt), readMotFile(o.pred), { iouThreshold: o.iou, minVisibility: o.minVisibility });
  return { gtFile: o.gt, predFile: o.pred, ...m };
}

export const evalTrackJob: JobHandler<EvalTrackPayload, EvalTrackResult> = {
  kind: 'eval-track',
  queue: QUEUE_OF['eval-track'],
  payload: EvalTrackPayloadSchema as unknown as z.ZodType<EvalTrackPayload>,
  result: z.custom<EvalTrackResult>((v) => typeof v === 'object' && v !== null && 'mota' in v),
  summary: 'score tracker output against MOT ground truth: MOTA, MOTP, IDF1, IDP, IDR, ID switches, fragmentations',
  run: async (payload) => evaluateTracks(payload),
};

/** The tracker's defaults, for command-line help. */
export const TRACKER_DEFAULTS = DEFAULT_BYTETRACK;
