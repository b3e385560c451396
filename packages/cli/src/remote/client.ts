import { CvoptError, ERROR_CATALOGUE, type ErrorCode, type JobEvent } from '@cvopt/core';
import { loadCredentials } from './credentials.js';

/** A thin HTTP client of the control plane: every non-2xx answer becomes the server's own catalogue error. */
export class RemoteClient {
  constructor(
    readonly url: string,
    private readonly token?: string,
  ) {}

  static fromCredentials(): RemoteClient {
    const c = loadCredentials();
    return new RemoteClient(c.url, c.token);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`${this.url.replace(/\/$/, '')}/api/v1${path}`, init);
    } catch (e) {
      throw new CvoptError('DEPENDENCY_MISSING', `cannot reach the cvopt server at ${this.url}: ${(e as Error).cause ? String((e as { cause: unknown }).cause) : (e as Error).message}`, {
        hint: 'check the URL and that `cvopt server` runs there',
      });
    }
  }

  async request<T = Record<string, unknown>>(method: string, path: string, o: { json?: unknown; body?: Buffer; type?: string } = {}): Promise<T> {
    const headers = this.headers(o.json !== undefined ? { 'content-type': 'application/json' } : o.body ? { 'content-type': o.type ?? 'application/octet-stream' } : {});
    const res = await this.fetch(path, { method, headers, ...(o.json !== undefined ? { body: JSON.stringify(o.json) } : o.body ? { body: o.body } : {}) });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { raw: text };
    }
    if (!res.ok) throw remoteError(res.status, parsed);
    return parsed as T;
  }

  /** A GET whose body the caller reads (downloads); errors as for `request`. */
  async raw(path: string): Promise<Response> {
    const res = await this.fetch(path, { headers: this.headers() });
    if (!res.ok) throw remoteError(res.status, await res.json().catch(() => ({})));
    return res;
  }

  /** A job's events, resuming after a dropped connection with Last-Event-ID, until the job ends. */
  async *events(projectId: string, jobId: string, after = 0): AsyncGenerator<JobEvent> {
    let last = after;
    for (let attempt = 0; attempt < 20; attempt++) {
      const res = await this.fetch(`/projects/${projectId}/jobs/${jobId}/events`, { headers: this.headers({ 'last-event-id': String(last) }) });
      if (!res.ok) throw remoteError(res.status, await res.json().catch(() => ({})));
      let buf = '';
      let ended = false;
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let cut: number;
          while ((cut = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            const data = block.split('\n').find((l) => l.startsWith('data: '));
            if (!data) continue;
            const e = JSON.parse(data.slice(6)) as JobEvent;
            last = e.seq;
            yield e;
            if (e.type === 'state' && ['succeeded', 'failed', 'cancelled'].includes(String((e.data as { state?: string }).state))) ended = true;
          }
        }
      } catch {
        /* the connection dropped: resume below */
      }
      if (ended) return;
      const job = await this.request<{ job: { state: string } }>('GET', `/projects/${projectId}/jobs/${jobId}`);
      if (['succeeded', 'failed', 'cancelled'].includes(job.job.state)) return;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export function remoteError(status: number, body: unknown): CvoptError {
  const e = (body as { error?: { code?: string; message?: string; hint?: string; where?: Record<string, unknown>; details?: unknown } }).error;
  const code = (e?.code && e.code in ERROR_CATALOGUE ? e.code : status === 401 ? 'UNAUTHENTICATED' : status === 403 ? 'FORBIDDEN' : status === 404 ? 'NOT_FOUND' : 'INTERNAL') as ErrorCode;
  return new CvoptError(code, e?.message ?? `the server answered HTTP ${status}`, {
    ...(e?.hint ? { hint: e.hint } : code === 'UNAUTHENTICATED' ? { hint: 'cvopt login URL' } : {}),
    ...(e?.where ? { where: e.where } : {}),
    ...(e?.details !== undefined ? { details: e.details } : {}),
  });
}
