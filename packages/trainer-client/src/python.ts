import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PythonInfo {
  executable: string;
  version: string;
  torch?: string;
  cuda?: boolean;
  torchvision?: string;
  error?: string;
}

/** The trainer's Python package directory (…/trainer), which holds cvopt_trainer. */
export function trainerDir(): string {
  const fromEnv = process.env.CVOPT_TRAINER_DIR;
  if (fromEnv) return resolve(fromEnv);
  // packages/trainer-client/{src,dist}/python.{ts,js} → repository root/trainer
  const here = dirname(fileURLToPath(import.meta.url));
  return resolve(here, '../../../trainer');
}

let cached: PythonInfo | undefined;

/**
 * Find a Python that has PyTorch: CVOPT_PYTHON, else Debian's /usr/bin/python3 (where python3-torch lives), else
 * the first python3 on PATH. Probed once per process.
 */
export function findPython(): PythonInfo {
  if (cached) return cached;
  const candidates = process.env.CVOPT_PYTHON ? [process.env.CVOPT_PYTHON] : ['/usr/bin/python3', 'python3'];
  let last: PythonInfo | undefined;
  for (const exe of candidates) {
    if (exe.startsWith('/') && !existsSync(exe)) continue;
    const probe = spawnSync(
      exe,
      [
        '-c',
        'import json,sys\nd={"version":sys.version.split()[0]}\ntry:\n import torch,torchvision\n d["torch"]=torch.__version__;d["cuda"]=bool(torch.cuda.is_available());d["torchvision"]=torchvision.__version__\nexcept Exception as e:\n d["error"]=str(e)\nprint(json.dumps(d))',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (probe.status !== 0) continue;
    const info = { executable: exe, ...(JSON.parse(probe.stdout.trim()) as Omit<PythonInfo, 'executable'>) };
    last = info;
    if (info.torch) return (cached = info);
  }
  return (cached = last ?? { executable: candidates[0] ?? 'python3', version: 'not found', error: 'no python3 interpreter found' });
}
