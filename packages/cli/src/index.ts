export { buildProgram, VERSION } from './program.js';
export { emit, table, reportError, ProgressLine } from './output.js';
