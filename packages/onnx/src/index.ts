export { readOnnx, writeOnnx, encodeOnnx, type LoadedOnnx, type ExternalDataFile } from './io.js';
export { decodeModel, encodeModel, ATTR } from './model.js';
export type { ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfo, TypeProto, OpsetId, StringStringEntry } from './model.js';
export { DT, dataTypeName, tensorValues, makeTensor, floatToHalf, halfToFloat } from './tensor.js';
export { inspectOnnx, allNodes, domainOf, realInputs, type OnnxInspection, type TensorInfo, type OperatorCount, type Dim } from './inspect.js';
export { inferManifest, inferManifestWithNotes, verifyManifest, parsePythonNames, OVERRIDE_FLAGS, type ManifestOverrides, type InferredManifest, type ManifestMismatch } from './manifest.js';
export { COCO80 } from './coco.js';
export { valueInfo, attr, node, model, getAttr, type ModelSpec } from './builder.js';
export { checkOnnx, knownTargets, DEFAULT_TARGETS, type CheckReport, type TargetReport, type OpIssue, type CheckOptions, type Target } from './check.js';
