import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { testDataDir } from '@cvopt/core';
import { COCO80 } from '@cvopt/onnx';

export const REPO = resolve(import.meta.dirname, '../../..');
export const CLI = join(REPO, 'packages/cli/dist/main.js');
export const dataDir = testDataDir();
/** COCO val2017 000000000139: a living room (people, chairs, a TV), 640×426. */
export const photo = () => join(dataDir!, 'coco128-val/images/val2017/000000000139.jpg');

/** The real pretrained YOLOv8n (INT8) of the shared data with its model.json, as `cvopt export` would leave it. */
export function yoloModel(dir: string): string {
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(dataDir!, 'models/yolov8n_int8.onnx'), join(dir, 'model.onnx'));
  writeFileSync(
    join(dir, 'model.json'),
    JSON.stringify({
      name: 'yolov8n',
      task: 'detect',
      input: { name: 'images', shape: [1, 3, 640, 640], layout: 'NCHW', dtype: 'float32' },
      preprocess: { resize: 'letterbox', size: [640, 640], padValue: 114, scale: 1 / 255, channelOrder: 'RGB', padPosition: 'center' },
      output: { name: 'output0', format: 'yolov8', shape: [1, 84, 8400], scoresActivated: true },
      classNames: COCO80,
      opset: 20,
      precision: 'int8',
      // A host path, as real manifests carry: the artifact must not.
      provenance: { source: join(dataDir!, 'models/yolov8n_int8.onnx'), trainingRun: join(REPO, 'runs/train/exp1') },
    }),
  );
  return join(dir, 'model.onnx');
}

export function cli(...args: string[]): { code: number; out: string; err: string } {
  try {
    const out = execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, out, err: '' };
  } catch (e) {
    const x = e as { status: number; stdout: string; stderr: string };
    return { code: x.status, out: x.stdout, err: x.stderr };
  }
}

/** Start a command that prints its URL on stdout once ready (the runtime's entry, `cvopt serve`). */
export async function startPrintingUrl(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/\S+)/.exec(out);
      if (m) res(m[1]!);
    });
    child.once('exit', (c) => rej(new Error(`exited ${c} before ready: ${err.slice(-2000)}`)));
  });
  return { url, child };
}

export async function predict(url: string, image: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${url}/v1/predict`, { method: 'POST', body: image, headers: { 'content-type': 'image/jpeg', ...headers } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

export interface Detection {
  box: number[];
  score: number;
  classId: number;
}

/** Same detections: same classes in the same order, boxes within 0.5 px, scores within 1e-3. */
export function sameDetections(a: Detection[], b: Detection[]): boolean {
  return (
    a.length === b.length &&
    a.every((d, i) => {
      const e = b[i]!;
      return d.classId === e.classId && Math.abs(d.score - e.score) < 1e-3 && d.box.every((v, k) => Math.abs(v - e.box[k]!) < 0.5);
    })
  );
}

/** Code and data that must never ship in a service artifact or image. */
export const FORBIDDEN = /(^|\/)(@cvopt\/(bench|optimizer|datasets|platform|trainer-client|packager|onnx|cli)|vendor\/(bench|optimizer|datasets|platform|trainer-client|packager|onnx|cli)|trainer|cvopt_trainer|data\.yaml)(\/|$)|\.(py|pt|pth|pkl|jpg|jpeg|png|mp4)$/;
