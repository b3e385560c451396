import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram } from '@cvopt/runtime';

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Prometheus metrics of the control plane, rendered by hand (runtime's exposition classes). */
export class ServerMetrics {
  readonly requests = new Counter('cvopt_server_http_requests_total', 'HTTP requests answered, by route, method and status');
  readonly latency = new Histogram('cvopt_server_http_request_duration_seconds', 'HTTP request latency by route', SECONDS);
  readonly logins = new Counter('cvopt_server_logins_total', 'login attempts by outcome');
  readonly uploads = new Counter('cvopt_server_uploads_total', 'uploads by kind and outcome');
  readonly uploadBytes = new Counter('cvopt_server_upload_bytes_total', 'bytes received in uploads');
  private readonly loop = monitorEventLoopDelay({ resolution: 10 });
  private readonly gauges: Gauge[] = [];

  constructor() {
    this.loop.enable();
    this.gauges.push(new Gauge('cvopt_server_event_loop_delay_p99_seconds', 'event-loop delay p99 since start', () => this.loop.percentile(99) / 1e9));
  }

  gauge(name: string, help: string, read: () => number): void {
    this.gauges.push(new Gauge(name, help, read));
  }

  render(): string {
    return [this.requests, this.latency, this.logins, this.uploads, this.uploadBytes, ...this.gauges].map((m) => m.render()).join('\n') + '\n';
  }

  close(): void {
    this.loop.disable();
  }
}
