import { execFileSync } from 'node:child_process';
import { findPython, trainerDir } from './python.js';

/**
 * A pico detector (yolov8p, 2 classes, 64 px) saved as a cvopt checkpoint, whose BatchNorm statistics come from
 * real forward passes, so its scores spread instead of all sitting at the prior. Written by the real worker's
 * Python: the tiny real model the platform's and the CLI's tests share.
 */
export function writePicoCheckpoint(path: string): void {
  const code = [
    'import sys, torch',
    'from torch import nn',
    'from cvopt_trainer.models import build_model',
    'torch.manual_seed(0)',
    'm = build_model("yolov8p", nc=2)',
    'for mod in m.modules():',
    '    if isinstance(mod, nn.BatchNorm2d):',
    '        mod.reset_running_stats(); mod.momentum = None',
    'm.train()',
    'with torch.no_grad():',
    '    for _ in range(2): m(torch.rand(2, 3, 64, 64))',
    'torch.save({"format": "cvopt-checkpoint-v1", "preset": "yolov8p", "task": "detect", "nc": 2, "imgsz": 64,',
    '            "names": ["circle", "square"], "state_dict": m.state_dict()}, sys.argv[1])',
  ].join('\n');
  execFileSync(findPython().executable, ['-c', code, path], { cwd: trainerDir(), stdio: ['ignore', 'ignore', 'inherit'] });
}
