// The heaviest functions of a V8 CPU profile (node --cpu-prof), by self time: where the server's main thread
// spends its CPU per request. Native frames (GC, writev) appear under V8's own names, e.g. "(garbage collector)".
// Time is counted in samples × the sampling interval, not from the samples' time deltas: on a busy host the
// process is descheduled between samples, and a delta then charges seconds of waiting to whatever ran last.
import { readFileSync } from 'node:fs';

const IDLE = new Set(['(idle)', '(program)']);

function load(file) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((node) => [node.id, node]));
  const deltas = [...prof.timeDeltas].sort((a, b) => a - b);
  const intervalMs = (deltas[deltas.length >> 1] ?? 1000) / 1000;
  return { prof, byId, intervalMs };
}

/** Top `n` functions by self time: [{ name, where, ms, share }], share of all non-idle samples. */
export function topFrames(file, n = 15) {
  const { prof, byId, intervalMs } = load(file);
  const self = new Map();
  let busy = 0;
  for (const id of prof.samples) {
    const f = byId.get(id).callFrame;
    if (IDLE.has(f.functionName)) continue;
    const where = f.url ? `${f.url.replace(/^.*\/(packages|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}\u0000${where}`;
    self.set(key, (self.get(key) ?? 0) + 1);
    busy++;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, count]) => {
      const [name, where] = key.split('\u0000');
      return { name, where, ms: count * intervalMs, share: count / busy };
    });
}

/** The busy (non-idle) milliseconds a profile sampled. */
export function busyMs(file) {
  const { prof, byId, intervalMs } = load(file);
  return prof.samples.filter((id) => !IDLE.has(byId.get(id).callFrame.functionName)).length * intervalMs;
}
