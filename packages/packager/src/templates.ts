import { stringify } from 'yaml';
import type { EngineId } from '@cvopt/core';

/**
 * The deployment files of an artifact. Every file is standard: `docker build`, `docker compose up` and
 * `kubectl apply -f k8s/` work unchanged on a machine with a registry; the base images are build arguments with a
 * pinned official default.
 */

/** Official Node image the CPU variant runs on; the exact tag of the Node release cvopt is built and tested with. */
export const DEFAULT_BASE_IMAGE = 'node:20.20.2-bookworm-slim';
/** CUDA 12 + cuDNN runtime for the GPU variant (ONNX Runtime's CUDA 12 build). */
export const DEFAULT_CUDA_IMAGE = 'nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04';
export const DEFAULT_REDIS_IMAGE = 'redis:7.2.5-bookworm';
export const DEFAULT_POSTGRES_IMAGE = 'postgres:16.3-bookworm';
/** Where the artifact lives inside the image; `cvopt serve ARTIFACT_DIR` passes the artifact's own folder instead. */
export const IMAGE_ROOT = '/srv/cvopt';
export const SERVICE_PORT = 8080;
/** The unprivileged user of the official Node images (uid 1000), numeric so Kubernetes can check runAsNonRoot. */
export const SERVICE_UID = 1000;

/**
 * YAML 1.1 rules for what needs quotes: compose implementations built on PyYAML read an unquoted `no` or `on` as a
 * boolean (redis then refused `--appendonly False`).
 */
const YAML_OPTIONS = { lineWidth: 0, version: '1.1', aliasDuplicateObjects: false } as const;

export interface TemplateInput {
  name: string;
  version: string;
  engine: EngineId;
  main: string;
  nodeFlags: string[];
  limits: { cpus: number; memoryMb: number };
}

const entry = (t: TemplateInput, main = t.main) => JSON.stringify(['node', ...t.nodeFlags, main, IMAGE_ROOT]);

/** Copied into every image stage that needs it: recomputes MANIFEST.json's checksums with nothing but Node. */
export const VERIFY_SCRIPT = `// Recompute every sha256 in MANIFEST.json; exit 1 naming each file that differs. Used by the image build.
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
const dir = process.argv[2] ?? '.';
const manifest = JSON.parse(readFileSync(join(dir, 'MANIFEST.json'), 'utf8'));
const bad = [];
for (const [file, want] of Object.entries(manifest.files)) {
  const p = join(dir, file);
  try {
    if (want.link !== undefined) { if (readlinkSync(p) !== want.link) bad.push(file + ': link changed'); continue; }
    if (lstatSync(p).isSymbolicLink()) { bad.push(file + ': is a link'); continue; }
    if (createHash('sha256').update(readFileSync(p)).digest('hex') !== want.sha256) bad.push(file + ': sha256 changed');
  } catch { bad.push(file + ': missing'); }
}
if (bad.length) { console.error('MANIFEST.json check failed:\\n  ' + bad.join('\\n  ')); process.exit(1); }
console.error('MANIFEST.json: ' + Object.keys(manifest.files).length + ' files verified');
`;

/** HEALTHCHECK command: the slim images have no curl, so Node asks /readyz itself. */
export const HEALTHCHECK_SCRIPT = `// Exit 0 when the service answers /readyz with 200 (model loaded, not draining); used by HEALTHCHECK.
import { request } from 'node:http';
const port = Number(process.env.CVOPT_PORT ?? ${SERVICE_PORT});
const req = request({ host: '127.0.0.1', port, path: '/readyz', timeout: 2000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy());
req.on('error', () => process.exit(1));
req.end();
`;

/**
 * GPU entry: TensorRT plans are specific to the GPU, driver and TensorRT version, so the plan cache lives in a
 * volume under a folder named by all three; a new card or driver builds a fresh plan on first start.
 */
export const GPU_ENTRYPOINT = `#!/bin/sh
# Keys the TensorRT plan cache by GPU, driver and TensorRT version, then starts the service (plans are not portable).
set -eu
gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n1 | tr -c 'A-Za-z0-9._\\n-' '_' || true)
trt=$(ls /usr/lib/x86_64-linux-gnu/libnvinfer.so.* 2>/dev/null | sed -n 's/.*libnvinfer\\.so\\.//p' | sort -V | tail -n1)
export CVOPT_TRT_CACHE_DIR="\${CVOPT_TRT_CACHE_ROOT:-/var/cache/cvopt/trt}/\${gpu:-unknown-gpu}_trt\${trt:-unknown}"
mkdir -p "$CVOPT_TRT_CACHE_DIR"
exec "$@"
`;

export function dockerfileCpu(t: TemplateInput): string {
  return `# syntax=docker/dockerfile:1
# cvopt inference service "${t.name}" (${t.engine}, CPU). Build: docker build -t ${imageName(t)} .
# The base is an argument so offline builders can point it at a local copy of the same image.
ARG BASE_IMAGE=${DEFAULT_BASE_IMAGE}

# Stage 1: check every file against MANIFEST.json, so an edited or corrupted artifact never becomes an image.
FROM \${BASE_IMAGE} AS verify
WORKDIR /artifact
COPY . .
RUN node app/verify-manifest.mjs /artifact

# Stage 2: only what the service runs: the runtime bundle, the model, its manifest and the runtime config.
FROM \${BASE_IMAGE}
ENV NODE_ENV=production
WORKDIR ${IMAGE_ROOT}
COPY --from=verify /artifact/app ./app
COPY --from=verify /artifact/model.onnx /artifact/model.json /artifact/cvopt.runtime.json /artifact/MANIFEST.json ./
USER ${SERVICE_UID}:${SERVICE_UID}
EXPOSE ${SERVICE_PORT}
# SIGTERM drains: no new work, accepted requests finish (gracePeriodMs in cvopt.runtime.json), then exit 0.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["node", "app/healthcheck.mjs"]
ENTRYPOINT ${entry(t)}
`;
}

export function dockerfileGpu(t: TemplateInput): string {
  return `# syntax=docker/dockerfile:1
# cvopt inference service "${t.name}" (${t.engine}, GPU: CUDA 12 + cuDNN, ONNX Runtime CUDA/TensorRT providers).
# Build: docker build -f Dockerfile.gpu -t ${imageName(t)}-gpu .   Run with a GPU: docker compose -f docker-compose.gpu.yml up
ARG BASE_IMAGE=${DEFAULT_BASE_IMAGE}
ARG CUDA_IMAGE=${DEFAULT_CUDA_IMAGE}

# Stage 1: verify the artifact, then fetch ONNX Runtime's CUDA 12 provider libraries (the CPU bundle leaves them out).
FROM \${BASE_IMAGE} AS build
WORKDIR /artifact
COPY . .
RUN node app/verify-manifest.mjs /artifact \\
 && cd app/node_modules/onnxruntime-node && node script/install.js --onnxruntime-node-install=cuda12

# Stage 2: NVIDIA's CUDA runtime with cuDNN, TensorRT from NVIDIA's apt repository (configured in that image), Node.
FROM \${CUDA_IMAGE}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends libnvinfer10 libnvinfer-plugin10 libnvonnxparsers10 \\
 && rm -rf /var/lib/apt/lists/* \\
 && groupadd --gid ${SERVICE_UID} node && useradd --uid ${SERVICE_UID} --gid node --no-create-home node \\
 && mkdir -p /var/cache/cvopt/trt && chown ${SERVICE_UID}:${SERVICE_UID} /var/cache/cvopt/trt
COPY --from=build /usr/local/bin/node /usr/local/bin/node
ENV NODE_ENV=production
WORKDIR ${IMAGE_ROOT}
COPY --from=build /artifact/app ./app
COPY --from=build /artifact/model.onnx /artifact/model.json /artifact/cvopt.runtime.json /artifact/MANIFEST.json ./
# TensorRT plans are built on first start for the GPU the container runs on and kept in this volume.
VOLUME /var/cache/cvopt/trt
USER ${SERVICE_UID}:${SERVICE_UID}
EXPOSE ${SERVICE_PORT}
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s --retries=3 CMD ["node", "app/healthcheck.mjs"]
ENTRYPOINT ["/bin/sh", "app/gpu-entrypoint.sh", ${entry(t).slice(1, -1)}]
`;
}

export const DOCKERIGNORE = `# Not part of an image: the packed copy of this folder and the orchestration files.
*.tar.gz
`;

export function imageName(t: Pick<TemplateInput, 'name' | 'version'>): string {
  return `cvopt/${t.name}:${t.version}`;
}

function serviceBlock(t: TemplateInput, gpu: boolean): Record<string, unknown> {
  return {
    build: { context: '.', dockerfile: gpu ? 'Dockerfile.gpu' : 'Dockerfile', args: { BASE_IMAGE: `\${BASE_IMAGE:-${DEFAULT_BASE_IMAGE}}` } },
    image: `\${CVOPT_IMAGE:-${imageName(t)}${gpu ? '-gpu' : ''}}`,
    ports: [`\${CVOPT_PUBLISH:-${SERVICE_PORT}}:${SERVICE_PORT}`],
    environment: {
      // Unset or empty = off (compose may note it defaults to a blank string). With the profiles: CVOPT_REDIS_URL=redis://redis:6379, CVOPT_REQUEST_LOG_URL=postgres://cvopt:cvopt@postgres:5432/cvopt
      CVOPT_REDIS_URL: '${CVOPT_REDIS_URL}',
      CVOPT_REQUEST_LOG_URL: '${CVOPT_REQUEST_LOG_URL}',
      // Seconds an answer to identical image bytes is reused from Redis by every replica (0 = off).
      CVOPT_RESPONSE_CACHE_TTL_S: '${CVOPT_RESPONSE_CACHE_TTL_S:-0}',
    },
    read_only: true,
    tmpfs: ['/tmp'],
    restart: 'unless-stopped',
    stop_signal: 'SIGTERM',
    stop_grace_period: '30s',
    healthcheck: { test: ['CMD', 'node', 'app/healthcheck.mjs'], interval: '10s', timeout: '3s', retries: 3, start_period: gpu ? '300s' : '30s' },
    deploy: {
      resources: {
        limits: { cpus: String(t.limits.cpus), memory: `${t.limits.memoryMb}M` },
        ...(gpu ? { reservations: { devices: [{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }] } } : {}),
      },
    },
    ...(gpu ? { volumes: ['trt-cache:/var/cache/cvopt/trt'] } : {}),
  };
}

export function composeFile(t: TemplateInput, gpu: boolean): string {
  const doc = {
    services: {
      cvopt: serviceBlock(t, gpu),
      redis: {
        profiles: ['redis'],
        // Reached only by the service on the compose network (no published port), so no password and no protected mode.
        image: `\${CVOPT_REDIS_IMAGE:-${DEFAULT_REDIS_IMAGE}}`,
        command: ['redis-server', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--maxmemory', '256mb', '--maxmemory-policy', 'volatile-ttl'],
        restart: 'unless-stopped',
        healthcheck: { test: ['CMD', 'redis-cli', 'ping'], interval: '5s', timeout: '2s', retries: 5 },
        deploy: { resources: { limits: { cpus: '0.5', memory: '320M' } } },
      },
      postgres: {
        profiles: ['postgres'],
        image: `\${CVOPT_POSTGRES_IMAGE:-${DEFAULT_POSTGRES_IMAGE}}`,
        environment: { POSTGRES_USER: 'cvopt', POSTGRES_PASSWORD: '${CVOPT_POSTGRES_PASSWORD:-cvopt}', POSTGRES_DB: 'cvopt' },
        volumes: ['request-log:/var/lib/postgresql/data'],
        restart: 'unless-stopped',
        healthcheck: { test: ['CMD', 'pg_isready', '-U', 'cvopt'], interval: '5s', timeout: '2s', retries: 5 },
        deploy: { resources: { limits: { cpus: '1', memory: '512M' } } },
      },
    },
    volumes: { 'request-log': {}, ...(gpu ? { 'trt-cache': {} } : {}) },
  };
  return `# cvopt inference service "${t.name}" (${t.engine}${gpu ? ', GPU' : ''}).
#   docker compose ${gpu ? '-f docker-compose.gpu.yml ' : ''}up -d --build
# Optional: --profile redis (rate-limit buckets shared by replicas, response cache) and --profile postgres (durable
# request log); set CVOPT_REDIS_URL / CVOPT_REQUEST_LOG_URL as in README.md to switch the service over to them.
${stringify(doc, YAML_OPTIONS)}`;
}

export function kubernetesManifests(t: TemplateInput): Record<string, string> {
  const labels = { 'app.kubernetes.io/name': t.name, 'app.kubernetes.io/component': 'inference', 'app.kubernetes.io/managed-by': 'cvopt' };
  const probe = (path: string, period: number, failure: number) => ({ httpGet: { path, port: 'http' }, periodSeconds: period, timeoutSeconds: 3, failureThreshold: failure });
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: t.name, labels },
    spec: {
      replicas: 2,
      selector: { matchLabels: { 'app.kubernetes.io/name': t.name } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels },
        spec: {
          terminationGracePeriodSeconds: 30,
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: SERVICE_UID, runAsGroup: SERVICE_UID, fsGroup: SERVICE_UID, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'inference',
              image: imageName(t),
              imagePullPolicy: 'IfNotPresent',
              ports: [{ name: 'http', containerPort: SERVICE_PORT, protocol: 'TCP' }],
              env: [
                { name: 'CVOPT_REDIS_URL', value: '' },
                { name: 'CVOPT_REQUEST_LOG_URL', value: '' },
              ],
              resources: {
                requests: { cpu: String(t.limits.cpus), memory: `${t.limits.memoryMb}Mi` },
                limits: { cpu: String(t.limits.cpus), memory: `${t.limits.memoryMb}Mi` },
              },
              startupProbe: probe('/readyz', 2, 60),
              readinessProbe: probe('/readyz', 5, 2),
              livenessProbe: probe('/healthz', 10, 3),
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '512Mi' } }],
        },
      },
    },
  };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: t.name, labels },
    spec: { selector: { 'app.kubernetes.io/name': t.name }, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
  };
  const hpa = {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: t.name, labels },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: t.name },
      minReplicas: 2,
      maxReplicas: 10,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
    },
  };
  const pdb = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: t.name, labels },
    spec: { minAvailable: 1, selector: { matchLabels: { 'app.kubernetes.io/name': t.name } } },
  };
  const y = (o: unknown) => stringify(o, YAML_OPTIONS);
  return { 'k8s/deployment.yaml': y(deployment), 'k8s/service.yaml': y(service), 'k8s/hpa.yaml': y(hpa), 'k8s/pdb.yaml': y(pdb) };
}
