import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixtureModels, jpeg, post, startApp } from './helpers.js';
import { rawRequest, sleep } from './raw-http.js';

/** Issue 13 item 3: a client that stops reading the NDJSON answer must not leak the upload on disk. */
describe('video uploads never stay on disk', () => {
  it('drops a client that stops reading, removes its folder, and sweeps folders of dead processes at start-up', async () => {
    const temp = mkdtempSync(join(tmpdir(), 'cvopt-video-root-'));
    const stale = join(temp, 'cvopt-video-999999999-left');
    mkdirSync(stale);
    const clip = join(temp, 'clip.mp4');
    // 600 frames, each answered with every anchor (score threshold 0): megabytes of NDJSON, more than socket buffers hold.
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=96x64:rate=60:duration=10', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', clip]);
    const video = readFileSync(clip);
    const s = await startApp(fixtureModels().detStatic, {
      video: { tempDir: temp, stallTimeoutMs: 400, maxFrames: 1000, maxSeconds: 60 },
      detect: { scoreThreshold: 0, maxDetections: 300 },
    });
    try {
      expect(existsSync(stale)).toBe(false);
      const uploads = () => readdirSync(temp).filter((n) => n.startsWith(`cvopt-video-${process.pid}-`));
      const head = `POST /v1/predict/video HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: ${video.length}\r\n\r\n`;
      let sawFolder = false;
      let client: import('node:net').Socket | undefined;
      const answer = rawRequest(
        s.url,
        head,
        async (sock) => {
          client = sock;
          sock.write(video);
          // Read the first bytes of the answer, then never read again.
          await new Promise((r) => sock.once('data', r));
          sock.pause();
          sawFolder = uploads().length === 1;
        },
        10_000,
      );
      for (let i = 0; i < 40 && !sawFolder; i++) await sleep(50);
      expect(sawFolder).toBe(true);
      // The server notices the stalled reader, stops ffmpeg and removes the folder while the client still hangs on.
      for (let i = 0; i < 100 && uploads().length > 0; i++) await sleep(50);
      expect(uploads()).toEqual([]);
      expect(client?.destroyed).toBe(false);
      client?.destroy();
      await answer;
      // The slot is free and the service healthy.
      expect(s.host.current.scheduler.admitted).toBe(0);
      expect((await post(`${s.url}/v1/predict`, await jpeg(), { 'content-type': 'image/jpeg' })).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});
