import type { ModelManifest } from '@cvopt/core';
import { ENGINES, type EngineId } from '@cvopt/core';
import { imageName, IMAGE_ROOT, SERVICE_PORT, type TemplateInput } from './templates.js';

/** The operator's README: what is in the folder, how to run, configure, check and scale it. */
export function operatorReadme(t: TemplateInput, m: ModelManifest, engine: EngineId, limits: Record<string, unknown>): string {
  const spec = ENGINES[engine];
  const img = imageName(t);
  const limitRows = Object.entries(limits)
    .filter(([, v]) => typeof v !== 'object' || v === null)
    .map(([k, v]) => `| \`${k}\` | ${JSON.stringify(v)} |`)
    .join('\n');
  return `# ${t.name} — cvopt inference service

Model **${m.name}** (${m.task}, ${m.precision}, input ${m.preprocess.size.join('×')}, ${m.classNames.length} classes) on
engine **${engine}**: ${spec.summary}.

## Files
| file | what |
|---|---|
| \`model.onnx\`, \`model.json\` | the model and its pre/post-processing contract |
| \`cvopt.runtime.json\` | every limit of the service with its value (validated when the artifact was made and again at start) |
| \`app/\` | the runtime service: \`app/${t.main}\` and only its production dependencies (\`package-lock.json\` included) |
| \`Dockerfile\`, \`Dockerfile.gpu\` | CPU image; GPU image (CUDA 12 + cuDNN, ONNX Runtime CUDA/TensorRT providers) |
| \`docker-compose.yml\`, \`docker-compose.gpu.yml\` | the service with limits, health check, restart; optional Redis and PostgreSQL profiles |
| \`k8s/\` | Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget |
| \`MANIFEST.json\` | sha256 of every file, the entry point, and where the model came from |

## Run
\`\`\`
docker compose up -d --build          # or: podman-compose up -d
curl -s localhost:${SERVICE_PORT}/readyz
curl -s -H 'content-type: image/jpeg' --data-binary @photo.jpg localhost:${SERVICE_PORT}/v1/predict
\`\`\`
Without containers (Node ${process.versions.node.split('.')[0]}): \`cvopt serve .\` runs the same entry point
(\`${['node', ...t.nodeFlags, t.main].join(' ')} DIR\`). Image name: \`${img}\`; the build's base image is
\`--build-arg BASE_IMAGE=…\` (default: the pinned official Node image). The image runs as uid 1000, read-only root
file system friendly (only \`/tmp\` is written, for video uploads). \`docker stop\` sends SIGTERM: the service stops
taking work, finishes what it accepted (\`gracePeriodMs\`), and exits 0.

## Check
\`cvopt package --verify .\` (or \`node app/verify-manifest.mjs .\`) recomputes every checksum in MANIFEST.json and
names any file that changed; the image build runs the same check and fails on a mismatch.

## Configure
The shipped config serves without API keys (\`auth.enabled: false\`): put the service behind your own access control,
or mount your own \`cvopt.runtime.json\` at \`${IMAGE_ROOT}/cvopt.runtime.json\` with \`auth.keys\` (keys never go in the image),
or set \`CVOPT_*\` variables (\`CVOPT_PORT\`, \`CVOPT_QUEUE_MAX\`, \`CVOPT_RATE_LIMIT_PER_SECOND\`, …). Current values:

| setting | value |
|---|---|
${limitRows}

### Redis (profile \`redis\`): rate limits shared by replicas
\`CVOPT_REDIS_URL=redis://redis:6379 docker compose --profile redis up -d\` keeps each key's token bucket in Redis,
so every replica draws from one budget (\`rateLimit.perSecond\`, \`rateLimit.burst\`). If Redis goes away, each
replica falls back to its own in-process bucket, logs it, and keeps serving; it returns to Redis when it is back.

### PostgreSQL (profile \`postgres\`): durable request log
\`CVOPT_REQUEST_LOG_URL=postgres://cvopt:cvopt@postgres:5432/cvopt docker compose --profile postgres up -d\`
writes one row per request (time, key id, route, status, latency, model version, detections) to
\`cvopt_request_log\`, in batches. If PostgreSQL goes away, rows are held in a bounded buffer (oldest dropped and
counted in /metrics) and prediction continues.

## GPU
\`docker compose -f docker-compose.gpu.yml up -d --build\` needs the NVIDIA container toolkit. A TensorRT plan is
built on the first start for the GPU it runs on and cached in the \`trt-cache\` volume under a folder named by GPU,
driver and TensorRT version (plans do not move between them), so the first start takes minutes and later ones not.
`;
}
