import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { CvoptError, type ModelManifest } from '@cvopt/core';
import { manifestFileOf, readNamesFile, resolveModel, type ManifestFix } from '@cvopt/platform';
import { action } from '../action.js';
import { flag, parseFlags } from '../flags.js';
import { emit, table } from '../output.js';

interface ManifestDoc {
  model: string;
  source: string;
  notes: string[];
  manifest: ModelManifest;
  written?: string;
}

function render(d: ManifestDoc): string {
  const m = d.manifest;
  const p = m.preprocess;
  return [
    `${d.model}: ${m.task}, ${m.classNames.length} classes, ${m.precision}, opset ${m.opset}`,
    `manifest: ${d.source}`,
    ...d.notes.map((n) => `  note: ${n}`),
    '',
    table(
      ['field', 'value'],
      [
        ['input', `${m.input.name} [${m.input.shape.join(', ')}] ${m.input.dtype}`],
        ['preprocess', `${p.resize} ${p.size.join('×')}, ${p.channelOrder}, scale ${p.scale}, mean [${p.mean.join(', ')}], std [${p.std.join(', ')}], pad ${p.padValue} (${p.padPosition})`],
        ['output', `${m.output.name} ${m.output.format} [${m.output.shape.join(', ')}]`],
        ['classes', m.classNames.length > 8 ? `${m.classNames.slice(0, 8).join(', ')}, … (${m.classNames.length})` : m.classNames.join(', ')],
      ],
    ),
    ...(d.written ? ['', `wrote ${d.written}`] : ['', 'run with --write to save it beside the model (cvopt serve, eval and bench read it)']),
  ].join('\n');
}

/** `cvopt manifest MODEL`: the model.json cvopt infers (or reads) for a model, shown or written beside it. */
export function register(program: Command): void {
  const cmd = program
    .command('manifest')
    .description('show the model.json cvopt infers for a model (input, preprocessing, output format, classes), or write it beside the model')
    .argument('<model>', 'an ONNX file (foreign or ours), a .pt/.pkl checkpoint or a preset')
    .option('--write', 'write the inferred manifest beside the ONNX file (<name>.json); refused when one is there')
    .option('--names <file>', 'class names: one per line, or a YAML file with names')
    .option('--channel-order <RGB|BGR>', 'override the channel order')
    .option('--scale <x>', 'override the pixel scale (1/255 for 0..1 inputs, 1 for 0..255)');
  action<[string]>(cmd, async (model, opts) => {
    const f = parseFlags(
      {
        write: flag.switch().default(false),
        names: flag.string().optional(),
        channelOrder: z.preprocess((v) => (typeof v === 'string' ? v.toUpperCase() : v), flag.oneOf(['RGB', 'BGR'])).optional(),
        scale: flag.number({ gt: 0 }).optional(),
      },
      opts,
    );
    const overrides: ManifestFix = {};
    if (f.names !== undefined) overrides.classNames = readNamesFile(f.names);
    if (f.channelOrder) overrides.channelOrder = f.channelOrder;
    if (f.scale !== undefined) overrides.scale = f.scale;
    const r = await resolveModel(model, { overrides });
    const doc: ManifestDoc = { model, source: r.manifestSource, notes: r.notes, manifest: r.manifest };
    if (f.write) {
      if (r.kind !== 'onnx') throw new CvoptError('INVALID_ARGUMENT', `--write saves a manifest beside an ONNX file; ${model} is a ${r.kind}`, { where: { field: '--write' }, hint: `\`cvopt export ${model} --out model.onnx\` writes model.json with the ONNX file` });
      const { target, existing } = manifestFileOf(model);
      if (existing) throw new CvoptError('CONFLICT', `${existing} already exists`, { where: { file: existing }, hint: 'edit it, or delete it to write the inferred one' });
      writeFileSync(target, `${JSON.stringify(r.manifest, null, 2)}\n`);
      doc.written = target;
    }
    emit(opts, doc, render);
  });
}
