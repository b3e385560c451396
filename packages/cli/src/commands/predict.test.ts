import { describe, expect, it } from 'vitest';
import { predictPayload } from './predict.js';

// What commander hands over for `cvopt predict M --source S …` (defaults as the command declares them).
const defaults = { source: 'bus.jpg', conf: '0.25', iou: '0.7', maxDet: '300', batch: '1', topk: '5', vidStride: '1', out: 'runs/predict/exp', queueDepth: '4' };

describe('predict flags', () => {
  it('--show-labels / --show-conf take true or false as Ultralytics spells them; --hide-* say false', () => {
    const p = (extra: Record<string, unknown>) => predictPayload('m.onnx', { ...defaults, ...extra }, false);
    expect(p({})).toMatchObject({ showLabels: true, showConf: true });
    expect(p({ showLabels: 'false' })).toMatchObject({ showLabels: false, showConf: true });
    expect(p({ showLabels: true, showConf: 'no' })).toMatchObject({ showLabels: true, showConf: false });
    expect(p({ hideLabels: true, hideConf: true })).toMatchObject({ showLabels: false, showConf: false });
    expect(p({ showLabels: 'true', hideLabels: true }).showLabels).toBe(false);
    expect(() => p({ showConf: 'maybe' })).toThrow(/--show-conf must be true or false, got "maybe"/);
  });
});
