// Model artifacts for the load test: the real YOLOv8n (copied, with a model.json written beside it), a
// synthetic detector exported at bench time with PyTorch, and any artifact directory given with --model.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { testDataDir as sharedDataDir } from '@cvopt/core';
import { COCO80 } from '@cvopt/onnx';
import { importOnnxToPytorch } from '@cvopt/trainer-client';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);

/** The shared data folder (CVOPT_TEST_DATA, else ../shared/data beside the repository), or undefined. */
export const testDataDir = () => sharedDataDir(ROOT);

/**
 * The real pretrained YOLOv8n at FP32: the shared file is dynamically quantized (ConvInteger), so its weights are
 * dequantised exactly into cvopt's PyTorch YOLOv8n and exported again, the path `cvopt bench` takes for ort-cpu.
 * Returns the artifact directory (model.onnx + model.json).
 */
export async function realYolov8nFp32(dataDir) {
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-yolov8n-fp32-'));
  process.stderr.write('  rebuilding the real YOLOv8n in PyTorch and exporting FP32 ONNX ...\n');
  // The trainer's import-onnx command, through the one Python launcher the platform uses.
  await importOnnxToPytorch(join(dataDir, 'models/yolov8n_int8.onnx'), join(dir, 'yolov8n.pt'));
  mkdirSync(join(dir, 'model'));
  execFileSync(process.execPath, [join(ROOT, 'packages/cli/dist/main.js'), 'export', join(dir, 'yolov8n.pt'), '--out', join(dir, 'model/model.onnx')], { stdio: ['ignore', 'ignore', 'inherit'] });
  return join(dir, 'model');
}

/** The real YOLOv8n as an FP32 artifact directory (see realYolov8nFp32). */
export async function yoloFp32Artifact(dataDir) {
  return { name: 'yolov8n (real, FP32, 640)', dir: await realYolov8nFp32(dataDir), image: join(dataDir, 'coco128-val/images/val2017/000000000139.jpg') };
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
      classNames: COCO80,
      opset: 20,
      precision: 'int8',
      provenance: { source: 'shared/data/models/yolov8n_int8.onnx' },
    }, null, 2),
  );
  return { name: 'yolov8n-int8 (real, dynamic ConvInteger, 640)', dir, image: join(dataDir, 'coco128-val/images/val2017/000000000139.jpg') };
}

/**
 * A small cvopt-trained detector: the quickstart's (yolov8p, 160 px, dynamic batch, trained on the synthetic shapes
 * dataset) from `dir` when it is there, else trained now with `cvopt quickstart` (about a minute on 2 cores). The
 * load test sends it one of its own validation images, the size of image it was trained for.
 */
export function quickstartArtifact(dir = join(ROOT, 'cvopt-quickstart')) {
  if (!existsSync(join(dir, 'model/model.onnx'))) {
    process.stderr.write(`  training the small model with cvopt quickstart into ${dir} ...\n`);
    execFileSync(process.execPath, [join(ROOT, 'packages/cli/dist/main.js'), 'quickstart', '--out', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const val = join(dir, 'dataset/images/val');
  const first = readdirSync(val).filter((f) => f.endsWith('.jpg')).sort()[0];
  return { name: 'cvopt-trained yolov8p (quickstart, 160)', dir: join(dir, 'model'), image: join(val, first) };
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
