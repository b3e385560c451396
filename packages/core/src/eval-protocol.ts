import { z } from 'zod';

/**
 * How detections are produced for accuracy: the one protocol eval, the quantize guard, bench, tune and the trainer's
 * validation share, recorded in every report that carries an accuracy figure. The default is Ultralytics'
 * validation: confidence floor 0.001, class-aware NMS at IoU 0.7, at most 300 detections per image, and multi-label
 * candidates (every class above the floor at an anchor, not only its best class). `multiLabel: false` is the
 * single-label protocol (one candidate per anchor), which under-reports mAP by about 0.01 on COCO.
 * contracts/eval-protocol.json holds the same defaults and a decode case both the TS and Python sides check.
 */
export const EvalProtocolSchema = z
  .object({
    conf: z.number().min(0).max(1).default(0.001),
    iou: z.number().min(0).max(1).default(0.7),
    maxDetections: z.number().int().positive().max(100_000).default(300),
    multiLabel: z.boolean().default(true),
  })
  .strict();
export type EvalProtocol = z.infer<typeof EvalProtocolSchema>;

export const DEFAULT_EVAL_PROTOCOL: EvalProtocol = Object.freeze(EvalProtocolSchema.parse({}));

/** The protocol in a few words, for tables and logs. */
export function describeProtocol(p: EvalProtocol): string {
  return `conf ${p.conf}, NMS IoU ${p.iou}, max ${p.maxDetections} dets, ${p.multiLabel ? 'multi-label' : 'single-label'}`;
}
