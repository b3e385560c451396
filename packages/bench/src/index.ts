export { latencyStats, percentile, isUnstable } from './stats.js';
export { environmentFingerprint, nvidiaGpus } from './environment.js';
export { selectEngine, SELECTION_RULE } from './select.js';
export { writeDecision, type WrittenDecision } from './decision-file.js';
export { renderChart, renderMarkdown, renderTable } from './render.js';
export { runBenchmark, runEngineChild, childScript, DEFAULT_LIMITS, DEFAULT_SETTINGS, type RunBenchmarkOptions, type BenchHooks } from './run.js';
export { measureOrt, measurePytorch } from './measure.js';
export { epContextModel } from './ep-context.js';
export type { BenchTarget, ReadyTarget, EngineLimits, MeasureSettings, ChildJob, ChildResult } from './types.js';
