import { realInputs, attr, model, node, type ModelProto } from '@cvopt/onnx';

/**
 * An EP-context model: one `EPContext` node (domain com.microsoft) that hands ONNX Runtime's TensorRT provider a
 * prebuilt serialized engine instead of a graph to compile. `embed_mode=0` keeps the engine in its own file,
 * `ep_cache_context` names it (relative paths resolve against the context model's folder), `main_context=1`
 * marks the node as the owner of the engine. The graph inputs and outputs are the source model's, so the
 * adapter and model.json work unchanged.
 */
export function epContextModel(source: ModelProto, enginePath: string): ModelProto {
  const g = source.graph;
  const inputs = realInputs(g);
  const ctx = node(
    'EPContext',
    inputs.map((v) => v.name),
    g.output.map((v) => v.name),
    {
      name: 'tensorrt_engine',
      domain: 'com.microsoft',
      attrs: [attr.int('embed_mode', 0), attr.string('ep_cache_context', enginePath), attr.int('main_context', 1), attr.string('source', 'TensorrtExecutionProvider')],
    },
  );
  const onnxOpset = source.opsetImport.find((o) => !o.domain)?.version ?? 17;
  return model({
    nodes: [ctx],
    inputs: inputs.map((v) => structuredClone(v)),
    outputs: g.output.map((v) => structuredClone(v)),
    opset: onnxOpset,
    extraOpsets: [{ domain: 'com.microsoft', version: 1 }],
    irVersion: source.irVersion ?? 8,
    metadata: Object.fromEntries(source.metadataProps.map((p) => [p.key, p.value])),
    name: `${g.name ?? 'graph'}_trt_ctx`,
  });
}
