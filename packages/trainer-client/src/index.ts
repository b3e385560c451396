// The one launcher of the Python worker (`python3 -m cvopt_trainer <command>`) and typed wrappers of its commands.
export { runWorker, type RunWorkerOptions } from './worker.js';
export { runPytorchBench, importOnnxToPytorch } from './commands.js';
export { findPython, trainerDir, type PythonInfo } from './python.js';
export { writePicoCheckpoint } from './pico.js';
