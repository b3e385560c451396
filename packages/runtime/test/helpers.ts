import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildApp, ModelHost, RuntimeMetrics, Semaphore, parseRuntimeConfig, rateLimiterFor, resolveModelSource, type Readiness, type RuntimeConfigInput } from '../src/index.js';

const SCRIPT = new URL('./fixtures/make_models.py', import.meta.url).pathname;

/**
 * The tiny ONNX models of make_models.py, exported once per script version and shared by every test file
 * (built into a temp folder, renamed into place atomically so parallel test files never see half a model).
 */
export function fixtureModels(): { detStatic: string; detDynamic: string; clsDynamic: string } {
  const hash = createHash('sha256').update(readFileSync(SCRIPT)).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), `cvopt-runtime-fixtures-${hash}`);
  if (!existsSync(join(dir, 'cls-dynamic', 'model.json'))) {
    const work = `${dir}.tmp-${process.pid}`;
    mkdirSync(work, { recursive: true });
    execFileSync('/usr/bin/python3', [SCRIPT, work], { stdio: ['ignore', 'ignore', 'inherit'] });
    try {
      renameSync(work, dir);
    } catch {
      rmSync(work, { recursive: true, force: true }); // another test file won the race
    }
  }
  return { detStatic: join(dir, 'det-static'), detDynamic: join(dir, 'det-dynamic'), clsDynamic: join(dir, 'cls-dynamic') };
}

export interface Running {
  url: string;
  app: FastifyInstance;
  host: ModelHost;
  readiness: Readiness;
  close(): Promise<void>;
}

/** The real app on a real socket (port 0). */
export async function startApp(target: string, cfg: RuntimeConfigInput = {}): Promise<Running> {
  const config = parseRuntimeConfig({ intraOpThreads: 1, ...cfg });
  const metrics = new RuntimeMetrics();
  const gpu = new Semaphore(config.gpuSlots);
  const host = new ModelHost(resolveModelSource(target), { config, metrics, gpu });
  await host.load();
  const app = await buildApp({ config, host, metrics, gpu, limiter: rateLimiterFor(config) });
  const address = await app.listen({ port: 0, host: '127.0.0.1', backlog: config.listenBacklog });
  return {
    url: address,
    app,
    host,
    readiness: host.readiness,
    close: async () => {
      await app.close();
      await host.close();
      metrics.close();
    },
  };
}

/** A small real JPEG with some structure. */
export async function jpeg(width = 96, height = 72, seed = 1): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 3 + seed * 40) & 255;
      raw[i + 1] = (y * 5 + seed * 10) & 255;
      raw[i + 2] = ((x ^ y) * seed) & 255;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

export async function png(width = 80, height = 60): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 10, g: 200, b: 90 } } }).png().toBuffer();
}

/** A PNG whose header claims `width`×`height` but carries almost no data: a decompression bomb's header. */
export function bombPng(width: number, height: number): Buffer {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export async function post(url: string, body: Buffer | string, headers: Record<string, string>): Promise<{ status: number; json: Json; headers: Headers }> {
  const r = await fetch(url, { method: 'POST', body, headers });
  const text = await r.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json, headers: r.headers };
}
