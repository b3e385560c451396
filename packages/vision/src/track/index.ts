export * from './assignment.js';
export * from './kalman.js';
export * from './bytetrack.js';
export * from './iou-tracker.js';
export * from './mot-file.js';
export * from './mot-metrics.js';
