import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Prometheus text exposition, written by hand: counters, gauges and histograms with labels. */

type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (l: Labels) => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};
/**
 * The map key of a label set, computed several times per request: sorted names and values joined with control
 * characters (label values here are routes, methods, statuses and codes). JSON.stringify of sorted entries cost
 * about 17 µs a call, this about 1 µs (it was 1–3 % of the HTTP thread's profile under load).
 */
const keyOf = (l: Labels) => {
  const names = Object.keys(l);
  if (names.length > 1) names.sort();
  let key = '';
  for (const n of names) key += `${n}\u0000${l[n]}\u0001`;
  return key;
};
const num = (n: number) => (Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN');

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; v: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = keyOf(labels);
    const e = this.values.get(k);
    if (e) e.v += by;
    else this.values.set(k, { labels, v: by });
  }

  get(labels: Labels = {}): number {
    return this.values.get(keyOf(labels))?.v ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, v } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${num(v)}`);
    return lines.join('\n');
  }
}

/** A gauge whose value is read at scrape time, so it never goes stale. */
export class Gauge implements Metric {
  private readonly fixed = new Map<string, { labels: Labels; v: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read?: () => number | { labels: Labels; v: number }[],
  ) {}

  set(v: number, labels: Labels = {}): void {
    this.fixed.set(keyOf(labels), { labels, v });
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    const r = this.read?.();
    if (typeof r === 'number') lines.push(`${this.name} ${num(r)}`);
    else if (r) for (const { labels, v } of r) lines.push(`${this.name}${labelText(labels)} ${num(v)}`);
    for (const { labels, v } of this.fixed.values()) lines.push(`${this.name}${labelText(labels)} ${num(v)}`);
    return lines.join('\n');
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; n: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  observe(v: number, labels: Labels = {}): void {
    const k = keyOf(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, n: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (v <= (this.buckets[i] as number)) s.counts[i] = (s.counts[i] as number) + 1;
    s.sum += v;
    s.n++;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, counts, sum, n } of this.series.values()) {
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket${labelText({ ...labels, le: num(b) })} ${counts[i]}`));
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${n}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${num(sum)}`);
      lines.push(`${this.name}_count${labelText(labels)} ${n}`);
    }
    return lines.join('\n');
  }
}

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The service's metrics. Sources of live values (queue, semaphore) are attached by the app. */
export class RuntimeMetrics {
  readonly requests = new Counter('cvopt_http_requests_total', 'HTTP requests answered, by route and status');
  readonly latency = new Histogram('cvopt_http_request_duration_seconds', 'HTTP request latency, by route and status', SECONDS);
  readonly rejections = new Counter('cvopt_rejections_total', 'requests refused before running, by reason (error code)');
  /** Refusals answered without reading a large body: the connection is closed instead of drained. */
  readonly unreadCloses = new Counter('cvopt_refusal_unread_closes_total', 'connections closed after an answer instead of reading a large request body, by status');
  readonly batchSize = new Histogram('cvopt_batch_size', 'requests per model execution', [1, 2, 4, 8, 16, 32, 64]);
  readonly engineLatency = new Histogram('cvopt_engine_duration_seconds', 'model execution time per batch', SECONDS);
  readonly eventLoop: IntervalHistogram;
  /** Event-loop delay over the last complete window (seconds), and the worst seen since start. */
  lag = { p50: 0, p99: 0, max: 0, lifetimeMax: 0 };
  private readonly metrics: Metric[] = [];
  private readonly lagTimer: NodeJS.Timeout;

  constructor(lagWindowMs = 5000) {
    this.eventLoop = monitorEventLoopDelay({ resolution: 10 });
    this.eventLoop.enable();
    // A lifetime histogram hides a recent stall behind hours of calm; report a rolling window instead.
    this.lagTimer = setInterval(() => this.rollLagWindow(), lagWindowMs);
    this.lagTimer.unref();
    this.metrics.push(this.requests, this.latency, this.rejections, this.unreadCloses, this.batchSize, this.engineLatency);
    this.metrics.push(
      new Gauge('cvopt_process_resident_memory_bytes', 'resident set size', () => process.memoryUsage.rss()),
      new Gauge('cvopt_event_loop_lag_seconds', 'event-loop delay over the last window (p50, p99, max)', () => [
        { labels: { quantile: '0.5' }, v: this.lag.p50 },
        { labels: { quantile: '0.99' }, v: this.lag.p99 },
        { labels: { quantile: '1' }, v: this.lag.max },
      ]),
      new Gauge('cvopt_event_loop_lag_max_seconds', 'worst event-loop delay since start', () => Math.max(this.lag.lifetimeMax, this.eventLoop.max / 1e9)),
    );
  }

  add(m: Metric): void {
    this.metrics.push(m);
  }

  gauge(name: string, help: string, read: () => number | { labels: Labels; v: number }[]): void {
    this.metrics.push(new Gauge(name, help, read));
  }

  render(): string {
    return `${this.metrics.map((m) => m.render()).join('\n')}\n`;
  }

  rollLagWindow(): void {
    const h = this.eventLoop;
    if (h.count > 0) {
      this.lag = { p50: h.percentile(50) / 1e9, p99: h.percentile(99) / 1e9, max: h.max / 1e9, lifetimeMax: Math.max(this.lag.lifetimeMax, h.max / 1e9) };
    }
    h.reset();
  }

  close(): void {
    clearInterval(this.lagTimer);
    this.eventLoop.disable();
  }
}
