export * from './resolve.js';
export * from './variants.js';
