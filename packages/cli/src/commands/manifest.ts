import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { CvoptError } from '@cvopt/core';
import { readNamesFile, resolveManifest } from '@cvopt/platform';
import { action } from '../action.js';
import { emit } from '../output.js';

/** `cvopt manifest MODEL.onnx [--write]`: show the model.json cvopt reads for a model (inferred when absent), or keep it. */
export function register(program: Command): void {
  const cmd = program
    .command('manifest')
    .description('show the model.json of an ONNX model (inferred from the file when there is none); --write saves it beside the model')
    .argument('<model>', 'MODEL.onnx')
    .option('--names <file>', 'class names when the model carries none (one per line, or a data.yaml)')
    .option('--write', 'write model.json beside the model (refuses to replace an existing one)');
  action<[string]>(cmd, async (model, opts) => {
    if (!existsSync(model)) throw new CvoptError('NOT_FOUND', `model ${model} does not exist`, { where: { file: model } });
    const { manifest, source, notes } = resolveManifest(model, typeof opts.names === 'string' ? { classNames: readNamesFile(opts.names) } : {});
    if (opts.write) {
      const file = join(dirname(model), 'model.json');
      if (existsSync(file)) throw new CvoptError('CONFLICT', `${file} exists already`, { where: { file }, hint: 'remove it first to replace it' });
      writeFileSync(file, `${JSON.stringify(manifest, null, 2)}\n`);
      emit(opts, { file, manifest, notes }, () => [`wrote ${file}`, ...notes.map((n) => `note: ${n}`)].join('\n'));
      return;
    }
    emit(opts, manifest, (m) => [`# ${source}`, ...notes.map((n) => `# note: ${n}`), JSON.stringify(m, null, 2)].join('\n'));
  });
}
