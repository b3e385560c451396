// Pieces the overhead benchmarks share.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { testDataDir } from '../packages/core/dist/index.js';

/** --model, else the shared real YOLOv8n; exits 2 with the reason when neither exists. */
export function modelArg(values) {
  const data = testDataDir(resolve(import.meta.dirname, '..'));
  const model = values.model ?? (data && join(data, 'models', 'yolov8n_int8.onnx'));
  if (!model || !existsSync(model)) {
    console.error('no model: pass --model PATH or set CVOPT_TEST_DATA to the shared data folder');
    process.exit(2);
  }
  return model;
}
