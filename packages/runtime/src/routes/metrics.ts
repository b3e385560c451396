import type { FastifyInstance } from 'fastify';
import type { RuntimeConfig } from '../config.js';
import type { RouteContext } from '../http/context.js';
import { buildOpenApi, routeDoc, type RouteDoc } from '../openapi.js';
import * as S from '../schemas.js';

/** Prometheus metrics (engineer+), the live gauges, and the OpenAPI document built from every route's schema. */
export function metricsRoutes(app: FastifyInstance, { config, host, readiness, metrics, gpu }: RouteContext): void {
  const docs: RouteDoc[] = [];
  app.addHook('onRoute', (r) => {
    docs.push(...routeDoc(r));
  });
  app.get('/metrics', { schema: S.metrics, config: { permission: 'metrics' } }, async (_req, reply) => {
    return reply.type('text/plain; version=0.0.4').send(metrics.render());
  });
  app.get('/openapi.json', { schema: S.openapi }, async () => buildOpenApi(docs, { title: 'cvopt inference service', version: '1' }));

  const live = <T>(read: (s: NonNullable<ReturnType<typeof current>>) => T, idle: T) => () => {
    const s = current();
    return s ? read(s) : idle;
  };
  const current = () => (host.ready ? host.current.scheduler : undefined);
  metrics.gauge('cvopt_queue_depth', 'requests waiting in the model queue', live((s) => s.depth, 0));
  metrics.gauge('cvopt_admitted_requests', 'requests admitted and not yet answered (decoding, queued, running)', live((s) => s.admitted, 0));
  metrics.gauge('cvopt_inflight_requests', 'requests inside a running model execution', live((s) => s.inFlight, 0));
  metrics.gauge('cvopt_service_time_seconds', 'EWMA of one model execution', live((s) => s.serviceMs / 1000, 0));
  metrics.gauge('cvopt_prepare_time_seconds', 'EWMA of upload + decode + preprocess before the queue', live((s) => s.prepMs / 1000, 0));
  metrics.gauge('cvopt_gpu_slots_in_use', 'GPU tasks running now', () => gpu?.inUse ?? 0);
  metrics.gauge('cvopt_gpu_slots_max_observed', 'highest number of GPU tasks ever running at once', () => gpu?.maxObserved ?? 0);
  metrics.gauge('cvopt_ready', '1 when the model is loaded, warmed and the service takes work', () => (readiness.takesWork ? 1 : 0));
  metrics.gauge('cvopt_engine_restarts', 'engine worker deaths the model was reloaded after, since start', () => host.restarts);
  metrics.gauge('cvopt_limit', 'configured limits', () => limitGauges(config));
}

function limitGauges(c: RuntimeConfig) {
  const l = (name: string, v: number) => ({ labels: { name }, v });
  return [
    l('queue_max', c.queueMax),
    l('concurrency', c.concurrency),
    l('gpu_slots', c.gpuSlots),
    l('batch_max', c.batchMax),
    l('batch_delay_ms', c.batchDelayMs),
    l('slo_ms', c.sloMs),
    l('body_limit_bytes', c.bodyLimitBytes),
    l('max_image_pixels', c.maxImagePixels),
    l('video_max_bytes', c.video.maxBytes),
    l('video_max_seconds', c.video.maxSeconds),
    l('video_max_frames', c.video.maxFrames),
    l('rate_limit_per_second', c.rateLimit.perSecond),
    l('rate_limit_burst', c.rateLimit.burst),
    l('grace_period_ms', c.gracePeriodMs),
    l('rss_soft_cap_bytes', c.rssSoftCapMb * 1024 * 1024),
  ];
}
