export { latencyStats, percentile, isUnstable } from './stats.js';
export { environmentFingerprint, nvidiaGpus } from './environment.js';
export { selectEngine, SELECTION_RULE } from './select.js';
export { renderChart, renderMarkdown, renderTable } from './render.js';
