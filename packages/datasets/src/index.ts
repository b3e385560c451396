export * from './problem.js';
export * from './files.js';
export * from './labels.js';
export * from './detection.js';
export * from './synth.js';
export { SHAPE_KINDS, type ShapeKind } from './raster.js';
export * from './classification.js';
export * from './check.js';
export { DEFAULT_READ_LIMITS, readLimits, readTextBounded, type DatasetReadLimits, type TextRead } from './read.js';
