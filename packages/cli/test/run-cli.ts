import { buildProgram, CommanderError, commanderExitCode, wantsJson } from '../src/program.js';
import { resetInterrupt } from '../src/interrupt.js';

/** Run the real program in-process, capturing stdout, stderr and the exit code it sets. */
export async function runCli(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  const write = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  let out = '';
  let err = '';
  process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((err += String(chunk)), true)) as typeof process.stderr.write;
  try {
    resetInterrupt();
    try {
      await buildProgram({ json: wantsJson(args) }).parseAsync(['node', 'cvopt', ...args]);
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
      return { out, err, code: commanderExitCode(e) };
    }
    return { out, err, code: Number(process.exitCode ?? 0) };
  } finally {
    process.stdout.write = write;
    process.stderr.write = errWrite;
    process.exitCode = 0;
  }
}
