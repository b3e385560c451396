// Job handlers run by the CLI in-process (embedded mode) and, later, by platform workers from the queues.
export * from './doctor.js';
export * from './jobs/bench.js';
export * from './jobs/eval.js';
export * from './jobs/export.js';
export * from './jobs/train.js';
export * from './jobs/tune.js';
export * from './jobs/quickstart.js';
export * from './jobs/predict.js';
export * from './jobs/eval-track.js';
