// Pieces the overhead benchmarks share.
import { existsSync, readFileSync } from 'node:fs';
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

/**
 * CPU time the hypervisor gave to others while this VM wanted it ("steal", /proc/stat), as a share of the time the
 * VM's CPUs were busy or stolen since `since` (a previous call's `ticks`; none: since boot). A shared VM's figures
 * swing with it: a run with 15 % steal had the engine alone vary by 40 % between passes a minute apart.
 */
export function stealShare(since) {
  let f;
  try {
    f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return { ticks: undefined, share: NaN };
  }
  // user nice system idle iowait irq softirq steal
  const ticks = { busy: f[0] + f[1] + f[2] + f[5] + f[6], steal: f[7] ?? 0 };
  const busy = ticks.busy - (since?.busy ?? 0);
  const steal = ticks.steal - (since?.steal ?? 0);
  return { ticks, share: busy + steal > 0 ? steal / (busy + steal) : NaN };
}

/** "; hypervisor steal 12 % of busy CPU time during the run" since `start` (a stealShare()), or '' without /proc/stat. */
export function stealNote(start) {
  if (!start.ticks) return '';
  const { share } = stealShare(start.ticks);
  return Number.isFinite(share) ? `; hypervisor steal ${(share * 100).toFixed(0)} % of busy CPU time during the run` : '';
}
