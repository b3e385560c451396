export { runWorker, type RunWorkerOptions } from './worker.js';
export { findPython, trainerDir, type PythonInfo } from './python.js';
