// Model artifacts for the load test: the real YOLOv8n (copied, with a model.json written beside it), a
// synthetic detector exported at bench time with PyTorch, and any artifact directory given with --model.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);

export const COCO_NAMES = [
  'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
  'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
  'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
  'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
  'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv',
  'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase',
  'scissors', 'teddy bear', 'hair drier', 'toothbrush',
];

export function testDataDir() {
  const env = process.env.CVOPT_TEST_DATA;
  if (env) return existsSync(env) ? resolve(env) : undefined;
  const guess = resolve(ROOT, '../shared/data');
  return existsSync(guess) ? guess : undefined;
}

/** The shared YOLOv8n int8 model as an artifact directory (the shared file itself is never written). */
export function yoloArtifact(dataDir) {
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-load-yolov8n-'));
  copyFileSync(join(dataDir, 'models/yolov8n_int8.onnx'), join(dir, 'model.onnx'));
  writeFileSync(
    join(dir, 'model.json'),
    JSON.stringify({
      schemaVersion: 1,
      name: 'yolov8n-int8',
      task: 'detect',
      input: { name: 'images', shape: [1, 3, 640, 640], layout: 'NCHW', dtype: 'float32' },
      preprocess: { resize: 'letterbox', size: [640, 640], padValue: 114, scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'RGB', padPosition: 'center', stride: 32 },
      output: { name: 'output0', format: 'yolov8', shape: [1, 84, 8400], scoresActivated: true },
      classNames: COCO_NAMES,
      opset: 20,
      precision: 'int8',
      provenance: { source: 'shared/data/models/yolov8n_int8.onnx' },
    }, null, 2),
  );
  return { name: 'yolov8n-int8 (real, 640)', dir };
}

/** A small detector with a dynamic batch axis, exported now with /usr/bin/python3 + torch.onnx.export. */
export function syntheticArtifact(size = 320) {
  const out = mkdtempSync(join(tmpdir(), 'cvopt-load-synth-'));
  execFileSync('/usr/bin/python3', [join(ROOT, 'packages/runtime/test/fixtures/make_models.py'), out, '--size', String(size)], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { name: `synthetic tiny detector (dynamic batch, ${size})`, dir: join(out, 'det-dynamic') };
}

/** Copy an artifact so the load test can put its own runtime config beside the model. */
export function withConfig(target, config) {
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-load-run-'));
  mkdirSync(dir, { recursive: true });
  cpSync(target.dir, dir, { recursive: true });
  writeFileSync(join(dir, 'cvopt.runtime.json'), JSON.stringify(config, null, 2));
  return dir;
}
