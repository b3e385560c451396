export * from './image.js';
export * from './resize.js';
export * from './preprocess.js';
export * from './boxes.js';
export * from './detect.js';
export * from './classify.js';
