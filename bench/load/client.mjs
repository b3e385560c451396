// Closed-loop virtual users over keep-alive HTTP: each sends a request, waits for the answer, and sends the
// next; a refusal (429/503) is honoured by waiting its Retry-After (plus up to half again of jitter), as a polite client does.
// Users join evenly over `rampS` seconds (k6's ramping VUs, locust's spawn rate), then the level runs `seconds`
// more; latencies and throughput are those of the steady part, and what was refused during the ramp is reported
// on its own (rampRejected). rampS 0 starts every user at once: a thundering herd.
// Impolite clients (no back-off, no Expect) run on raw sockets (raw-client.mjs), which cost the shared cores far
// less CPU per request than node's http client; their report adds `reconnects`.
import http from 'node:http';
import { runRawLevel } from './raw-client.mjs';
import { summarize } from './stats.mjs';

export async function runLevel({ url, users, seconds, body, contentType, path = '/v1/predict', onTick, expectContinue = true, rampS = 1, impolite = false, timeoutMs = 30_000 }) {
  if (impolite) return runRawLevel({ url, users, seconds, body, contentType, path, onTick, rampS, timeoutMs });
  // A connection of its own per virtual user, as distinct users have (k6's VUs, locust's users): one shared pool would
  // hand a user the connection another user's refusal paused (the runtime paces refused connections).
  const agents = Array.from({ length: users }, () => new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 }));
  const target = new URL(path, url);
  const byStatus = {};
  const okLat = [];
  const rejectLat = [];
  let dropped = 0;
  let timeouts = 0;
  let completedInWindow = 0;
  const t0 = performance.now();
  const steady = t0 + rampS * 1000;
  const end = steady + seconds * 1000;
  const rampRejectLat = [];
  const tick = setInterval(() => onTick?.(), 100);

  const once = (agent) =>
    new Promise((resolve) => {
      const start = performance.now();
      let answered = false;
      let sentBody = !expectContinue;
      const headers = { 'content-type': contentType, 'content-length': body.length };
      // Like curl with a large upload: ask first, send the body only after the server's 100 Continue.
      if (expectContinue) headers.expect = '100-continue';
      const req = http.request(
        { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers },
        (res) => {
          res.resume();
          res.on('end', () => {
            answered = true;
            if (!sentBody) req.destroy(); // refused before the body: the server closes this connection
            const ms = performance.now() - start;
            byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
            const inWindow = start >= steady;
            if (res.statusCode === 200) {
              if (inWindow) okLat.push(ms);
              const done = performance.now();
              if (done >= steady && done <= end) completedInWindow++;
            } else if (res.statusCode === 429 || res.statusCode === 503) (inWindow ? rejectLat : rampRejectLat).push(ms);
            resolve({ status: res.statusCode, retryAfter: Number(res.headers['retry-after'] ?? 0) });
          });
          res.on('error', () => {
            dropped++;
            resolve({ status: -1 });
          });
        },
      );
      req.setTimeout(timeoutMs, () => {
        if (answered) return;
        answered = true;
        timeouts++;
        req.destroy();
        resolve({ status: 0 });
      });
      req.on('error', () => {
        if (answered) return;
        answered = true;
        dropped++;
        resolve({ status: -1 });
      });
      if (expectContinue) {
        req.on('continue', () => {
          sentBody = true;
          req.end(body);
        });
        req.flushHeaders();
      } else req.end(body);
    });

  const user = async (i) => {
    await new Promise((res) => setTimeout(res, (i / users) * rampS * 1000));
    while (performance.now() < end) {
      const r = await once(agents[i]);
      if (!impolite && (r.status === 429 || r.status === 503) && performance.now() < end) {
        // Honoured: at least Retry-After, plus up to half again of jitter so the refused do not return in step.
        const waitMs = Math.min(end - performance.now(), Math.max(1, r.retryAfter) * 1000 * (1 + 0.5 * Math.random()));
        await new Promise((res) => setTimeout(res, waitMs));
      }
    }
  };
  await Promise.all(Array.from({ length: users }, (_, i) => user(i)));
  clearInterval(tick);
  const elapsedS = (performance.now() - t0) / 1000;
  for (const a of agents) a.destroy();
  return { users, elapsedS, byStatus, dropped, timeouts, impolite, throughput: completedInWindow / seconds, ok: summarize(okLat), rejected: summarize(rejectLat), rampRejected: summarize(rampRejectLat), rampS };
}
