import type { ModelProto } from './model.js';
import { DT } from './tensor.js';

/** Element types of every tensor, propagated through the ops cvopt models use (no external shape inference). */
export function inferTypes(m: ModelProto): Map<string, number> {
  const g = m.graph;
  const types = new Map<string, number>();
  for (const v of [...g.input, ...g.valueInfo, ...g.output]) if (v.type?.tensorType?.elemType) types.set(v.name, v.type.tensorType.elemType);
  for (const t of g.initializer) types.set(t.name ?? '', t.dataType);
  for (const n of g.node) {
    const first = types.get(n.input[0] ?? '') ?? DT.FLOAT;
    const a = (name: string) => n.attribute.find((x) => x.name === name);
    let out: number[];
    switch (n.opType) {
      case 'Shape':
      case 'Size':
      case 'NonZero':
      case 'ArgMax':
      case 'ArgMin':
        out = [DT.INT64];
        break;
      case 'Cast':
        out = [a('to')?.i ?? DT.FLOAT];
        break;
      case 'Constant':
        out = [a('value')?.t?.dataType ?? (a('value_ints') ? DT.INT64 : DT.FLOAT)];
        break;
      case 'ConstantOfShape':
        out = [a('value')?.t?.dataType ?? DT.FLOAT];
        break;
      case 'Equal':
      case 'Less':
      case 'Greater':
      case 'LessOrEqual':
      case 'GreaterOrEqual':
      case 'Not':
      case 'And':
      case 'Or':
      case 'Xor':
      case 'IsNaN':
      case 'IsInf':
        out = [DT.BOOL];
        break;
      case 'TopK':
        out = [first, DT.INT64];
        break;
      case 'Where':
        out = [types.get(n.input[1] ?? '') ?? DT.FLOAT];
        break;
      case 'DequantizeLinear':
        out = [DT.FLOAT];
        break;
      case 'QuantizeLinear':
        out = [types.get(n.input[2] ?? '') ?? DT.UINT8];
        break;
      default:
        out = n.output.map(() => first);
    }
    n.output.forEach((o, i) => types.set(o, out[i] ?? out[0] ?? DT.FLOAT));
  }
  return types;
}

