import * as ort from 'onnxruntime-node';

/** Versions that decide engine behaviour, as a report's environment fingerprint records them. */
export function engineVersions(): Record<string, string> {
  const v: Record<string, string> = { node: process.versions.node };
  const ortVersions = ort.env.versions as Record<string, string | undefined>;
  if (ortVersions.node) v['onnxruntime-node'] = ortVersions.node;
  if (ortVersions.common) v['onnxruntime-common'] = ortVersions.common;
  return v;
}
