import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CvoptError, type JobHandler, type JobHandlerRegistry } from '@cvopt/core';

/**
 * The handlers `cvopt worker` serves when no --handlers module is given: the platform's registry (train, tune, export,
 * eval, bench, quantize, check, select, quickstart). This function is the one place that wires it; the platform is
 * loaded only here, so a worker with --handlers never loads it.
 */
export async function defaultHandlerRegistry(): Promise<JobHandlerRegistry> {
  const { platformHandlerRegistry } = await import('@cvopt/platform');
  return platformHandlerRegistry();
}

function isHandler(h: unknown): h is JobHandler {
  const x = h as Partial<JobHandler> | undefined;
  return !!x && typeof x.kind === 'string' && typeof x.queue === 'string' && typeof x.run === 'function' && !!x.payload && !!x.result;
}

/**
 * Load handlers from an ES module: its `handlers` export (or default export) is a Map of kind → handler, an array
 * of handlers, or a function returning either. Lets a deployment add its own job kinds to a worker.
 */
export async function loadHandlerModule(file: string): Promise<JobHandlerRegistry> {
  const path = resolve(file);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    throw new CvoptError('INVALID_ARGUMENT', `cannot load the handler module ${path}: ${(e as Error).message}`, { where: { file: path, field: '--handlers' }, cause: e });
  }
  let found = mod.handlers ?? mod.default;
  if (typeof found === 'function') found = await (found as () => unknown)();
  const list = found instanceof Map ? [...found.values()] : Array.isArray(found) ? found : undefined;
  if (!list) {
    throw new CvoptError('INVALID_ARGUMENT', `${path} exports no handlers`, {
      where: { file: path, field: '--handlers' },
      hint: 'export `handlers`: a Map of kind → JobHandler, an array of JobHandler, or a function returning one',
    });
  }
  const out = new Map<string, JobHandler>();
  list.forEach((h, i) => {
    if (!isHandler(h)) throw new CvoptError('INVALID_ARGUMENT', `handler #${i} in ${path} is not a JobHandler (kind, queue, payload, result, run)`, { where: { file: path, field: `handlers[${i}]` } });
    out.set(h.kind, h);
  });
  return out;
}
