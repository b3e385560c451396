import { createOrtEngine, readManifest } from '@cvopt/engines';
const model = 'cvopt-quickstart/artifact/model.onnx';
const manifest = readManifest(model);
const [h, w] = manifest.preprocess.size;
const dims = [1, 3, h, w];
const x = new Float32Array(3 * h * w).fill(0.5);
const med = (t) => { t = [...t].sort((a, b) => a - b); return t[Math.floor(t.length / 2)]; };
const engines = [];
for (const threads of [1, 2]) for (const spinning of [false, true]) {
  const e = await createOrtEngine(model, manifest, { engine: 'ort-cpu', spinning, intraOpNumThreads: threads });
  for (let i = 0; i < 50; i++) await e.run(x, dims);
  engines.push({ name: `t${threads} spin=${spinning}`, e, res: { none: [], sleep: [] } });
}
for (let round = 0; round < 5; round++) for (const g of engines) for (const mode of ['none', 'sleep']) {
  const t = [];
  for (let i = 0; i < 150; i++) {
    if (mode === 'sleep') await new Promise((r) => setTimeout(r, 2));
    const t0 = performance.now();
    await g.e.run(x, dims);
    t.push(performance.now() - t0);
  }
  g.res[mode].push(med(t));
}
for (const g of engines) console.log(g.name, 'b2b', g.res.none.map((v) => v.toFixed(2)).join(' '), '| gap2', g.res.sleep.map((v) => v.toFixed(2)).join(' '), '| med', med(g.res.none).toFixed(2), med(g.res.sleep).toFixed(2));
