// Job handlers (core's JobHandler contract) run by the CLI in-process through runLocal and by the job system's
// workers from the queues; the model resolver and engine variants they share.
export * from './doctor.js';
export * from './handlers.js';
export * from './run-local.js';
export * from './models/index.js';
export * from './jobs/bench.js';
export * from './jobs/eval.js';
export * from './jobs/export.js';
export * from './jobs/train.js';
export * from './jobs/tune/index.js';
export * from './jobs/quickstart.js';
export * from './jobs/predict.js';
export { openPredictEngine } from './predict/threads.js';
export * from './jobs/eval-track.js';
