import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { CvoptError, ENGINES, ORT_ENGINE_IDS, parseWith, usableCpus, type EngineId, type ExecutionProviderId } from '@cvopt/core';

/**
 * Every limit of the service, with its default. One file (cvopt.runtime.json or .yaml), then CVOPT_* environment
 * overrides, validated once at start-up; the effective values are exported as gauges in /metrics.
 */

export const RoleSchema = z.enum(['viewer', 'engineer', 'admin']);
export type Role = z.infer<typeof RoleSchema>;

export const ApiKeySchema = z.object({
  /** Who holds it; appears in logs instead of the key. */
  name: z.string().min(1),
  key: z.string().min(16, 'an API key must be at least 16 characters'),
  role: RoleSchema,
});

/** Engine ids the service can run: ONNX Runtime engines marked servable in core's ENGINES. */
export const SERVABLE_ENGINE_IDS = ORT_ENGINE_IDS.filter((id) => ENGINES[id].servable) as [EngineId, ...EngineId[]];

/** The execution provider of a servable engine id (from core's ENGINES, never a second table). */
export function providerOf(engine: EngineId): ExecutionProviderId {
  return ENGINES[engine].provider ?? 'cpu';
}

/**
 * The config key `provider: cpu|cuda` from before engine ids: mapped to ort-cpu / ort-cuda with a deprecation
 * warning, so existing artifacts keep starting.
 */
function legacyProvider(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !('provider' in raw)) return raw;
  const { provider, ...rest } = raw as Record<string, unknown>;
  if (rest.engine === undefined && (provider === 'cpu' || provider === 'cuda')) {
    process.emitWarning('runtime config: "provider" is deprecated; use "engine" with an engine id (ort-cpu, ort-cpu-int8, ort-cuda, …)', 'DeprecationWarning');
    return { ...rest, engine: provider === 'cuda' ? 'ort-cuda' : 'ort-cpu' };
  }
  return raw; // let the strict schema name the unknown or conflicting key
}

const RuntimeConfigObject = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Pending TCP connections the kernel may hold (capped by net.core.somaxconn). Node's 511 makes a burst of 1000 clients retry SYNs for seconds. */
    listenBacklog: z.number().int().min(1).max(65535).default(2048),
    /**
     * Requests admitted and not yet running, beyond which new ones get 429 QUEUE_FULL at once. 128: above the 100
     * concurrent users the service is sized for, so clients with one request in flight each are never refused by
     * the bound alone (at 64, a third of 100 closed-loop users were always refused); what cannot finish in time is
     * refused by the deadline admission instead (queue × measured drain rate ≤ admissionTarget × SLO): the
     * quickstart's 160-px model drains ≈ 2.6 ms per request here, so 128 queued finish in ≈ 0.35 s; YOLOv8n at
     * 640 drains ≈ 75 ms, so about 22 fit in 1.7 s and admission, not this bound, refuses the rest.
     */
    queueMax: z.number().int().min(1).max(100_000).default(128),
    /**
     * Concurrent model executions, each on its own engine instance (a worker thread with its own session, so the
     * weights are loaded once per instance). 1 = one model shared by every request. On a CPU, N instances with
     * cores/N threads each keep their throughput while decoding and HTTP take cores; one instance with every
     * core stalls at each operator's barrier instead (see the README's load-test figures).
     */
    concurrency: z.number().int().min(1).max(64).default(1),
    /** ONNX Runtime intra-op threads per instance; 0 = ONNX Runtime's own choice for one instance (as `cvopt bench` times it), the CPU cores divided among several. */
    intraOpThreads: z.number().int().min(0).max(256).default(0),
    /**
     * Nice value of the inference thread and ONNX Runtime's intra-op threads (Linux, per thread): above 0 the HTTP
     * thread and image decoding take the CPU first, so headers are read, refusals go out and admission stays fast
     * while inference saturates every core. Measured on a busy 2-core host (bench/load-test.mjs, README): at 0 the
     * engine's own run at one user is as fast as the engine alone (2.65 / 3.00 ms against 4.45 / 3.28 ms at 10 —
     * nice is where the one-user difference goes when other processes want the CPU) and the 160-px model's
     * impolite goodput rose (0.54× against 0.37×), but YOLOv8n at 1000 impolite connections left 1136 requests
     * unanswered within the SLO + 5 s (0 at 10). 10 stays the default; 0 suits a host where the service is alone.
     */
    engineNice: z.number().int().min(0).max(19).default(10),
    /**
     * When engineNice applies. 'under-load' (default): only while the service is loaded (more requests admitted
     * than twice the engine instances, until 1 s after that ends); at one user the inference threads run at the
     * process's own priority, as in `cvopt bench` — the nice matters only when the HTTP thread and decoding compete
     * with inference, and is what cost the one-user engine time when other processes wanted the CPU. Needs the
     * right to lower a thread's nice again (root with CAP_SYS_NICE, or RLIMIT_NICE ≥ 20, e.g. systemd
     * LimitNICE=20, podman/docker --ulimit nice=20:20); without it the engine keeps engineNice throughout, as with
     * 'always'.
     */
    engineNiceMode: z.enum(['always', 'under-load']).default('under-load'),
    /**
     * Whether idle intra-op threads busy-wait (ONNX Runtime's own default). Off here: spinning threads hold every
     * core between runs, which delays the main thread's hand-over to the next run and the decoding of the next
     * image (a 160 px model ran at 1.7 ms instead of 0.9 ms per image with it on); it helps only large models
     * run back to back.
     */
    intraOpSpinning: z.boolean().default(false), // engines' SERVED_SPINNING, which bench and tune time with (config.test)
    /**
     * Send each engine instance its next full batch while it still runs the current one, so it never idles
     * waiting for the main thread to hear of a result and hand over more (see Scheduler's prefetch).
     */
    enginePrefetch: z.boolean().default(true),
    /** Parallel tasks allowed on one GPU. */
    gpuSlots: z.number().int().min(1).max(2).default(2),
    /** Dynamic batching (only when the model's batch dimension is dynamic). 1 disables it. */
    batchMax: z.number().int().min(1).max(256).default(8),
    /** How long the oldest queued request may wait for a batch to fill. */
    batchDelayMs: z.number().min(0).max(1000).default(2),
    /**
     * Share of a request's deadline that admission may plan to fill with queueing and service. Under saturation
     * every admitted request sits at this boundary; the rest of the deadline absorbs estimation error, so accepted
     * requests meet the deadline at p95 rather than half of them missing it.
     */
    admissionTarget: z.number().gt(0).max(1).default(0.85),
    /** Default deadline of a request; a client may lower it with X-Deadline-Ms or ?deadline_ms=. */
    sloMs: z.number().int().min(1).max(600_000).default(2000),
    /** Largest request body (images, JSON, multipart). */
    bodyLimitBytes: z.number().int().min(1024).max(1 << 30).default(16 * 1024 * 1024),
    /** Largest decoded image (width × height); checked from the header before decoding. */
    maxImagePixels: z.number().int().min(1).max(1_000_000_000).default(40_000_000),
    video: z
      .object({
        maxBytes: z.number().int().min(1024).default(200 * 1024 * 1024),
        maxSeconds: z.number().positive().default(120),
        maxFrames: z.number().int().min(1).default(3600),
        /**
         * Videos uploaded or decoded at once; the next is refused (429, before its body is read). Each costs an
         * ffmpeg process and its frames; two keep the engine fed from video while images still get through.
         */
        maxConcurrent: z.number().int().min(1).max(64).default(2),
        /**
         * A client that stops reading the NDJSON answer for this long is dropped (ffmpeg stopped, the upload's temp
         * folder removed) instead of holding its slot and disk forever.
         */
        stallTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
        /** Where uploads are written while they are decoded (default: the OS temp folder). */
        tempDir: z.string().min(1).optional(),
      })
      .prefault({}),
    /**
     * How a request body must arrive (slow uploads hold admitted slots): image, JSON and multipart bodies within
     * `timeoutMs`; every body (video too) at `minBytesPerSecond` or faster once `graceMs` have passed. A body that
     * falls behind is answered 408 UPLOAD_TOO_SLOW and its connection closed.
     */
    upload: z
      .object({
        timeoutMs: z.number().int().min(100).max(600_000).default(10_000),
        minBytesPerSecond: z.number().int().min(0).default(32 * 1024),
        graceMs: z.number().int().min(0).max(600_000).default(2000),
        /** Node's limit for the request headers to arrive (slowloris). */
        headersTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
      })
      .prefault({}),
    /**
     * Fairness per client (its API key's name, or its address when auth is off): bodies still uploading at once
     * (beyond: 429), and open TCP connections per address (beyond: the connection is closed at once). 0 = no cap.
     */
    perClient: z
      .object({
        maxUploads: z.number().int().min(0).default(16),
        /**
         * Requests one key (or address) may have admitted at once — decoding, queued or running; beyond: 429. 0 = no
         * cap beyond queueMax (the default: load tests and NAT put many users behind one address). Set it so one hot
         * key cannot take the whole queue from the others.
         */
        maxAdmitted: z.number().int().min(0).default(0),
        maxConnections: z.number().int().min(0).default(2048),
      })
      .prefault({}),
    /**
     * After a refusal (429/503) the connection's next request is not read for min(Retry-After, this) ms: a client
     * that honours Retry-After never notices, one that resends at once (most client libraries) is paced at the
     * transport — its next request waits in the kernel's buffer, costing no CPU — instead of making the service
     * parse, judge and answer thousands of refusals a second while the engine starves. The pause is the
     * connection's: a client that pools connections across its own users (a gateway, a shared keep-alive pool) may
     * hand another user the paused connection, who then waits up to this long — set 0 behind such a proxy. 0
     * disables it.
     */
    refusalPauseMs: z.number().int().min(0).max(60_000).default(1000),
    /**
     * A refused request (429/503/413, decided from the headers) whose body is still to come is drained — read and
     * discarded, keeping the connection alive — only when it declares at most this many bytes. A larger body, or a
     * chunked one of unknown length, is not read at all: the answer goes out with `Connection: close` and the
     * connection is closed once it is flushed, since skipping megabytes costs more CPU than a new connection.
     * 1 MiB, not less: a drained connection stays paced by refusalPauseMs, a closed one reconnects and resends at
     * once — with YOLOv8n's 158 KiB photo and 100 impolite clients a 64 KiB bound tripled the refusals the
     * service had to answer (1876 against 682 in 5 s) and its goodput fell from 0.64× to 0.05× (busy host).
     * Draining up to 1 MiB costs about a quarter of a millisecond of reads. 0 closes on every unread body.
     */
    refusalDrainMaxBytes: z.number().int().min(0).max(1 << 30).default(1024 * 1024),
    /**
     * Request bodies (/v1/predict's base64 JSON) and KServe outputs written as JSON at least this large are decoded
     * or encoded in the offload worker, so the HTTP thread keeps answering; smaller ones stay inline, where they
     * cost less than the hop to the worker (see the README's figures).
     */
    offloadMinBytes: z.number().int().min(0).max(1 << 30).default(64 * 1024),
    /** Open Inference Protocol requests: samples in one request (each takes a queue place), JSON nesting depth. */
    kserve: z
      .object({
        maxSamples: z.number().int().min(1).max(4096).default(64),
        maxJsonDepth: z.number().int().min(4).max(1000).default(32),
      })
      .prefault({}),
    /** Parts a multipart/form-data body may have (the parser stops at the first one past it). */
    multipartMaxParts: z.number().int().min(1).max(10_000).default(16),
    /** Token bucket per API key (or per client address when auth is off); perSecond 0 disables it. */
    rateLimit: z
      .object({
        perSecond: z.number().min(0).default(0),
        burst: z.number().int().min(1).default(100),
      })
      .prefault({}),
    auth: z
      .object({
        /** Default: on when keys are configured. Turning it off must be explicit. */
        enabled: z.boolean().optional(),
        keys: z.array(ApiKeySchema).default([]),
      })
      .prefault({}),
    /** After SIGTERM: how long accepted work may take to finish before the process exits anyway. */
    gracePeriodMs: z.number().int().min(0).max(600_000).default(10_000),
    /** Above this resident set size new work is refused (503) instead of risking out-of-memory. */
    rssSoftCapMb: z.number().int().min(64).default(2048),
    detect: z
      .object({
        scoreThreshold: z.number().min(0).max(1).default(0.25),
        iouThreshold: z.number().min(0).max(1).default(0.45),
        maxDetections: z.number().int().min(1).max(10_000).default(300),
      })
      .prefault({}),
    classify: z.object({ topK: z.number().int().min(1).max(1000).default(5) }).prefault({}),
    /**
     * Redis for state shared by replicas: the rate limiter's token buckets. Empty url = off (buckets per process).
     * When Redis stops answering within commandTimeoutMs, each replica falls back to its own buckets and serves on.
     */
    redis: z
      .object({
        url: z.string().regex(/^$|^rediss?:\/\/\S+$/, 'a redis:// or rediss:// URL, or empty for off').default(''),
        keyPrefix: z.string().default('cvopt:'),
        commandTimeoutMs: z.number().int().min(1).max(10_000).default(100),
        /** Seconds an answer to an identical image (same bytes, model and settings) is reused; 0 = no response cache. */
        responseCacheTtlS: z.number().int().min(0).max(86_400).default(0),
      })
      .prefault({}),
    /**
     * Durable request log in PostgreSQL (one row per answered request). Empty url = off. Rows are written in
     * batches; while the database is away at most bufferMax rows wait in memory (the oldest are dropped).
     */
    requestLog: z
      .object({
        url: z.string().regex(/^$|^postgres(ql)?:\/\/\S+$/, 'a postgres:// URL, or empty for off').default(''),
        table: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL identifier').default('cvopt_request_log'),
        flushIntervalMs: z.number().int().min(10).max(60_000).default(1000),
        batchMax: z.number().int().min(1).max(5000).default(500),
        bufferMax: z.number().int().min(1).max(1_000_000).default(10_000),
      })
      .prefault({}),
    /**
     * The engine id (core's ENGINES, servable ids only): its execution provider comes from the engine's spec. The
     * model file must already be the one the engine runs (the packager puts the INT8 / FP16 file in the artifact).
     */
    engine: z.enum(SERVABLE_ENGINE_IDS).default('ort-cpu'),
  })
  .strict();

export const RuntimeConfigSchema = z.preprocess(legacyProvider, RuntimeConfigObject);

export type RuntimeConfig = z.infer<typeof RuntimeConfigSchema>;
/** A config as written (every field optional); `provider` is the deprecated spelling of `engine`. */
export type RuntimeConfigInput = z.input<typeof RuntimeConfigObject> & { provider?: 'cpu' | 'cuda' };

export const CONFIG_FILE_NAMES = ['cvopt.runtime.json', 'cvopt.runtime.yaml', 'cvopt.runtime.yml'] as const;

/** CVOPT_* variables and the config field each one sets. */
const ENV_FIELDS: Record<string, { path: string[]; kind: 'int' | 'number' | 'string' | 'bool' }> = {
  CVOPT_HOST: { path: ['host'], kind: 'string' },
  CVOPT_PORT: { path: ['port'], kind: 'int' },
  CVOPT_QUEUE_MAX: { path: ['queueMax'], kind: 'int' },
  CVOPT_CONCURRENCY: { path: ['concurrency'], kind: 'int' },
  CVOPT_INTRA_OP_THREADS: { path: ['intraOpThreads'], kind: 'int' },
  CVOPT_ENGINE_NICE: { path: ['engineNice'], kind: 'int' },
  CVOPT_ENGINE_NICE_MODE: { path: ['engineNiceMode'], kind: 'string' },
  CVOPT_ENGINE_PREFETCH: { path: ['enginePrefetch'], kind: 'bool' },
  CVOPT_INTRA_OP_SPINNING: { path: ['intraOpSpinning'], kind: 'bool' },
  CVOPT_GPU_SLOTS: { path: ['gpuSlots'], kind: 'int' },
  CVOPT_BATCH_MAX: { path: ['batchMax'], kind: 'int' },
  CVOPT_BATCH_DELAY_MS: { path: ['batchDelayMs'], kind: 'number' },
  CVOPT_SLO_MS: { path: ['sloMs'], kind: 'int' },
  CVOPT_ADMISSION_TARGET: { path: ['admissionTarget'], kind: 'number' },
  CVOPT_REFUSAL_PAUSE_MS: { path: ['refusalPauseMs'], kind: 'int' },
  CVOPT_REFUSAL_DRAIN_MAX_BYTES: { path: ['refusalDrainMaxBytes'], kind: 'int' },
  CVOPT_OFFLOAD_MIN_BYTES: { path: ['offloadMinBytes'], kind: 'int' },
  CVOPT_BODY_LIMIT_BYTES: { path: ['bodyLimitBytes'], kind: 'int' },
  CVOPT_MAX_IMAGE_PIXELS: { path: ['maxImagePixels'], kind: 'int' },
  CVOPT_VIDEO_MAX_BYTES: { path: ['video', 'maxBytes'], kind: 'int' },
  CVOPT_VIDEO_MAX_SECONDS: { path: ['video', 'maxSeconds'], kind: 'number' },
  CVOPT_VIDEO_MAX_FRAMES: { path: ['video', 'maxFrames'], kind: 'int' },
  CVOPT_RATE_LIMIT_PER_SECOND: { path: ['rateLimit', 'perSecond'], kind: 'number' },
  CVOPT_RATE_LIMIT_BURST: { path: ['rateLimit', 'burst'], kind: 'int' },
  CVOPT_AUTH_ENABLED: { path: ['auth', 'enabled'], kind: 'bool' },
  CVOPT_GRACE_PERIOD_MS: { path: ['gracePeriodMs'], kind: 'int' },
  CVOPT_RSS_SOFT_CAP_MB: { path: ['rssSoftCapMb'], kind: 'int' },
  CVOPT_ENGINE: { path: ['engine'], kind: 'string' },
  CVOPT_REDIS_URL: { path: ['redis', 'url'], kind: 'string' },
  CVOPT_RESPONSE_CACHE_TTL_S: { path: ['redis', 'responseCacheTtlS'], kind: 'int' },
  CVOPT_REQUEST_LOG_URL: { path: ['requestLog', 'url'], kind: 'string' },
};

function envValue(name: string, raw: string, kind: 'int' | 'number' | 'string' | 'bool'): unknown {
  if (kind === 'string') return raw;
  if (kind === 'bool') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
  } else {
    const n = Number(raw);
    if (raw.trim() !== '' && Number.isFinite(n)) return n;
  }
  throw new CvoptError('INVALID_CONFIG', `environment variable ${name}="${raw}" is not a valid ${kind}`, {
    where: { field: name },
    hint: kind === 'bool' ? 'use true or false' : `set ${name} to a ${kind}`,
  });
}

/** Apply CVOPT_* overrides onto a raw config object (before validation, so the schema checks them too). */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const [name, { path, kind }] of Object.entries(ENV_FIELDS)) {
    const v = env[name];
    if (v === undefined) continue;
    let node: Record<string, unknown> = out;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== 'object' || next === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1] as string] = envValue(name, v, kind);
  }
  return out;
}

/** Validate a config object (already merged with the environment). */
export function parseRuntimeConfig(raw: unknown, file?: string): RuntimeConfig {
  const ctx: { what: string; code: 'INVALID_CONFIG'; hint: string; file?: string } = {
    what: file ? `runtime config ${file}` : 'runtime config',
    code: 'INVALID_CONFIG',
    hint: 'fix the named field; every field and its default is listed in the README section "Serve"',
  };
  if (file) ctx.file = file;
  const cfg = parseWith(RuntimeConfigSchema, raw, ctx);
  const keys = new Set<string>();
  cfg.auth.keys.forEach((k, i) => {
    if (keys.has(k.key)) {
      throw new CvoptError('INVALID_CONFIG', `auth.keys.${i} repeats a key already given to another holder`, {
        where: { field: `auth.keys.${i}.key`, ...(file ? { file } : {}) },
        hint: 'give every holder a distinct key',
      });
    }
    keys.add(k.key);
  });
  if (cfg.auth.enabled === true && cfg.auth.keys.length === 0) {
    throw new CvoptError('INVALID_CONFIG', 'auth.enabled is true but auth.keys is empty, so no request could ever be served', {
      where: { field: 'auth.keys', ...(file ? { file } : {}) },
      hint: 'add at least one key with a role, or set auth.enabled to false for local use',
    });
  }
  if (!isLoopback(cfg.host) && !authEnabled(cfg) && cfg.auth.enabled !== false) {
    throw new CvoptError('INVALID_CONFIG', `host ${cfg.host} accepts connections from other machines, and no API keys are configured: anyone who can reach it could predict, read the model and reload it`, {
      where: { field: 'auth', ...(file ? { file } : {}) },
      hint: 'add auth.keys (at least an admin key), or set auth.enabled: false (CVOPT_AUTH_ENABLED=false) to serve the network without keys on purpose, or bind 127.0.0.1',
    });
  }
  return cfg;
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CvoptError('NOT_FOUND', `cannot read runtime config ${file}: ${(e as Error).message}`, {
      where: { file },
      hint: 'pass an existing file with --config',
    });
  }
  let data: unknown;
  try {
    data = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    const line = (e as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    throw new CvoptError('INVALID_CONFIG', `runtime config ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`, {
      where: line !== undefined ? { file, line } : { file },
      hint: 'fix the syntax error',
    });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new CvoptError('INVALID_CONFIG', `runtime config ${file} must hold an object of settings`, { where: { file } });
  }
  return data as Record<string, unknown>;
}

/**
 * The effective config: an explicit file, else cvopt.runtime.{json,yaml} in the artifact directory, else defaults;
 * then CVOPT_* variables; then `overrides` (command-line flags) last.
 */
export function loadRuntimeConfig(opts: {
  file?: string;
  artifactDir?: string;
  overrides?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
} = {}): RuntimeConfig {
  let file = opts.file;
  if (!file && opts.artifactDir) file = CONFIG_FILE_NAMES.map((n) => join(opts.artifactDir as string, n)).find((p) => existsSync(p));
  const raw = file ? readConfigFile(file) : {};
  const merged = { ...applyEnvOverrides(raw, opts.env ?? process.env), ...(opts.overrides ?? {}) };
  return parseRuntimeConfig(merged, file);
}

/** Whether requests must carry a key: explicit setting, else on exactly when keys exist. */
export function authEnabled(cfg: RuntimeConfig): boolean {
  return cfg.auth.enabled ?? cfg.auth.keys.length > 0;
}

/**
 * The intra-op threads each engine instance is opened with; 0 leaves ONNX Runtime to choose. That is the default for
 * one instance: `cvopt bench` and `cvopt predict` open the engine the same way, so the latency `select` ranked is the
 * one the service runs. An explicit count is not the same thing: on the 2-core AMD VM of session 8 the quickstart's
 * 160-px model ran 1.58 ms a run with ONNX Runtime's choice and 2.61 ms with 2 threads asked for (YOLOv8n INT8: 59
 * against 64 ms). Several instances share the cores out between them. Under a cgroup CPU quota (a container's
 * --cpus) both count the quota's whole CPUs, not the host's cores (usableCpus; the engine applies it to 0).
 */
export function effectiveIntraOpThreads(cfg: RuntimeConfig): number {
  if (cfg.intraOpThreads > 0) return cfg.intraOpThreads;
  return cfg.concurrency === 1 ? 0 : Math.max(1, Math.floor(usableCpus() / cfg.concurrency));
}
