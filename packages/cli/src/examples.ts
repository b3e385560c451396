/**
 * Examples shown under `--help` for commands whose file does not add its own. One place, so a new command's
 * missing examples are one test failure away (test/help.test.ts).
 */
export const EXAMPLES: Record<string, string[]> = {
  bench: [
    'cvopt bench runs/exp1/model.onnx --data data.yaml --out runs/bench/report.json',
    'cvopt bench model.onnx --data data.yaml --video traffic.mp4 --engines ort-cpu,ort-cpu-int8 --out bench/report.json',
  ],
  dataset: ['cvopt dataset synth --task detect --out shapes --images 300', 'cvopt dataset check shapes/data.yaml'],
  'dataset synth': [
    'cvopt dataset synth --task detect --out shapes --images 300 --seed 0',
    'cvopt dataset synth --task classify --out shapes-cls --images 60',
    'cvopt dataset synth --task track --out seq --frames 200 --objects 10',
  ],
  doctor: ['cvopt doctor', 'cvopt doctor --json | jq ".items[] | select(.status != \\"ok\\")"', 'cvopt doctor --quick'],
  eval: [
    'cvopt eval runs/exp1/model.onnx --data data.yaml',
    'cvopt eval model.onnx --data data.yaml --engine ort-cpu-int8 --save-json preds.json',
    'cvopt eval model.onnx --data data.yaml --save-json dt.json --save-gt gt.json && cvopt eval --coco-gt gt.json --coco-dt dt.json',
  ],
  manifest: ['cvopt manifest yolox_nano.onnx', 'cvopt manifest yolox_nano.onnx --write', 'cvopt manifest custom.onnx --names classes.txt --channel-order BGR --scale 1 --write'],
  export: ['cvopt export runs/exp1/best.pt --out runs/exp1/model.onnx', 'cvopt export best.pt --out model.onnx --imgsz 320 --dynamic'],
  package: [
    'cvopt package --decision bench/decision.json --out dist/shapes',
    'cvopt package runs/exp1/model.onnx --engine ort-cpu --out dist/exp1 --cpus 4 --memory-mb 4096',
    'cvopt package --verify dist/shapes',
  ],
  quantize: ['cvopt quantize model.onnx --data data.yaml --out model.int8.onnx', 'cvopt quantize model.onnx --data data.yaml --method percentile --calib 64 --out model.int8.onnx'],
  quickstart: ['cvopt quickstart', 'cvopt quickstart --out demo --epochs 10'],
  select: ['cvopt select bench/report.json --max-map-drop 0.01', 'cvopt select bench/report.json --max-p95-ms 50 --min-map50 0.5 --out bench/decision.json'],
  serve: ['cvopt serve dist/shapes', 'cvopt serve runs/exp1/model.onnx --port 8080', 'curl -F image=@bus.jpg http://127.0.0.1:8080/v1/predict'],
  worker: [
    'cvopt worker --queues training,inference,packaging',
    'cvopt worker --queues training --vram-budget-mb 20000 --gpu-slots 2',
    'CVOPT_DATABASE_URL=postgres://cvopt@db/cvopt CVOPT_REDIS_URL=redis://redis:6379 cvopt worker --queues inference --concurrency 4',
  ],
};

/** The marker commander's help does not print for mandatory options. */
export const REQUIRED_MARK = '(required) ';
