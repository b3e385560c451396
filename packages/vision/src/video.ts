import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, fstatSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { getPriority, setPriority, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CvoptError } from '@cvopt/core';
import { DEFAULT_MAX_PIXELS, type RgbImage } from './image.js';
import { modelFrameSize, type PreprocessSpec } from './preprocess.js';

export interface VideoToolOptions {
  /** ffmpeg / ffprobe executables; default from CVOPT_FFMPEG / CVOPT_FFPROBE, else found on PATH. */
  ffmpegPath?: string;
  ffprobePath?: string;
  /**
   * Accept a stream URL (rtsp://, http(s)://, udp://, …) as the source, opened with the network protocols in
   * STREAM_PROTOCOLS and any demuxer. Only for a source the user named themselves (`cvopt predict --source URL`),
   * never for uploads, which stay on files and the accepted demuxers.
   */
  allowStreams?: boolean;
}

/** Protocols a stream URL may use when allowStreams is set. */
export const STREAM_PROTOCOLS = ['file', 'pipe', 'http', 'https', 'tcp', 'tls', 'udp', 'rtp', 'rtsp', 'rtmp', 'srtp', 'crypto', 'httpproxy'] as const;

const STREAM_URL = /^[a-z][a-z0-9+.-]*:\/\//i;

export interface VideoInfo {
  /** Frame size as decoded (display rotation applied, as ffmpeg applies it). */
  width: number;
  height: number;
  fps: number;
  /** From the container when it records it; otherwise duration × fps, and `framesExact` is false. */
  frames: number;
  framesExact: boolean;
  durationS: number;
  codec: string;
}

const STDERR_CAP = 16_384;

/**
 * Demuxers a video input may be opened with: single-file containers and elementary streams. Not on the list, so
 * refused by ffmpeg itself: playlists and lists that name other files (hls, dash, concat, ffconcat), image
 * sequences (image2), devices and anything with network or subprocess reach. An HLS playlist saved as .mp4 would
 * otherwise make ffmpeg open whatever paths it names on the machine that runs it.
 */
export const VIDEO_DEMUXERS: readonly string[] = Object.freeze(['mov', 'mp4', 'matroska', 'webm', 'avi', 'mpegts', 'mpeg', 'flv', 'ogg', 'asf', 'ivf', 'h264', 'hevc', 'm4v', 'gif']);
/** Protocols an input may use: the file named, or a pipe the caller feeds. */
export const VIDEO_PROTOCOLS: readonly string[] = Object.freeze(['file', 'pipe']);

/**
 * The input part of an ffmpeg or ffprobe command line for an untrusted video: protocol and demuxer allow-lists
 * first, then `-i` with the path as an explicit `file:` URL (absolute), so a name that starts with `-` or looks
 * like `http:`/`concat:`/`subfile:` is still just a file. `pipe:0` reads standard input. Put it before any output
 * options; ffprobe accepts the same arguments.
 */
export function videoInputArgs(source: string, opts: Pick<VideoToolOptions, 'allowStreams'> = {}): string[] {
  if (opts.allowStreams && STREAM_URL.test(source)) return ['-protocol_whitelist', STREAM_PROTOCOLS.join(','), '-i', source];
  const input = source === 'pipe:0' ? source : `file:${resolve(source)}`;
  return ['-protocol_whitelist', VIDEO_PROTOCOLS.join(','), '-format_whitelist', VIDEO_DEMUXERS.join(','), '-i', input];
}

function missingTool(tool: string, path: string, cause: unknown): CvoptError {
  return new CvoptError('DEPENDENCY_MISSING', `${tool} is not installed or not runnable (${path})`, {
    hint: `install FFmpeg (Debian/Ubuntu: apt-get install ffmpeg) or point CVOPT_${tool.toUpperCase()} at the ${tool} binary`,
    cause,
  });
}

/** Resolves once the child runs; a tool that cannot start (absent, not executable) is DEPENDENCY_MISSING. */
async function spawned(child: ChildProcess, path: string): Promise<void> {
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  } catch (e) {
    throw missingTool('ffmpeg', path, e);
  }
}

function invalidVideo(file: string, reason: string): CvoptError {
  return new CvoptError('VIDEO_INVALID', `${file}: video is corrupt, truncated or unsupported: ${reason}`, {
    where: { file },
    hint: 'check that the file plays in a video player; re-encode it with ffmpeg -i in.mp4 -c:v libx264 out.mp4',
  });
}

/** The first meaningful lines of ffmpeg's stderr, with the input path trimmed from the front of each. */
function reasonFrom(stderr: string, file: string): string {
  const lines = stderr
    .split('\n')
    // neither the path nor ffmpeg's "[demuxer @ 0x55…]" heap addresses belong in a message
    .map((l) => l.replace(`file:${resolve(file)}: `, '').replace(`${file}: `, '').replace(/\[[\w:-]+ @ 0x[0-9a-f]+\]\s*/g, '').replace(/^Format not on whitelist.*$/, 'the container is not an accepted video format (playlists, concat lists and image sequences are refused)').trim())
    .filter(Boolean);
  const unique = [...new Set(lines)];
  return unique.slice(0, 3).join('; ') + (unique.length > 3 ? ` (and ${unique.length - 3} more)` : '') || 'unknown error';
}

async function mustExist(file: string, allowStreams = false): Promise<void> {
  // A stream URL (rtsp://, http://, …) is ffmpeg's to open.
  if (allowStreams && STREAM_URL.test(file)) return;
  let regular: boolean;
  try {
    regular = (await stat(file)).isFile();
  } catch {
    throw new CvoptError('NOT_FOUND', `video ${file} does not exist`, { where: { file }, hint: 'check the path' });
  }
  // ffmpeg would block on a FIFO and never finish a device
  if (!regular) throw new CvoptError('VIDEO_INVALID', `video ${file} is not a regular file`, { where: { file }, hint: 'pass the video file itself' });
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < STDERR_CAP) stderr += d;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function rate(s: string | undefined): number {
  if (!s) return 0;
  const [n, d] = s.split('/').map(Number);
  if (!Number.isFinite(n) || !n) return 0;
  return d ? n / d : n;
}

interface FfprobeStream {
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  nb_frames?: string;
  duration?: string;
  tags?: Record<string, string>;
  side_data_list?: { rotation?: number }[];
}

/** Size, rate, length and codec of the first video stream, from ffprobe's JSON. */
export async function probeVideo(file: string, opts: VideoToolOptions = {}): Promise<VideoInfo> {
  await mustExist(file, opts.allowStreams);
  const ffprobe = opts.ffprobePath ?? process.env.CVOPT_FFPROBE ?? 'ffprobe';
  let r: Awaited<ReturnType<typeof run>>;
  try {
    r = await run(ffprobe, ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', '-select_streams', 'v:0', ...videoInputArgs(file, opts)]);
  } catch (e) {
    throw missingTool('ffprobe', ffprobe, e);
  }
  if (r.code !== 0) throw invalidVideo(file, reasonFrom(r.stderr, file));
  let parsed: { streams?: FfprobeStream[]; format?: { duration?: string } };
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch {
    throw invalidVideo(file, 'ffprobe returned unreadable output');
  }
  const s = parsed.streams?.[0];
  if (!s || !s.width || !s.height) throw invalidVideo(file, 'no video stream');
  const fps = rate(s.avg_frame_rate) || rate(s.r_frame_rate);
  const durationS = Number(s.duration ?? parsed.format?.duration ?? 0) || 0;
  const nb = Number(s.nb_frames);
  const framesExact = Number.isInteger(nb) && nb > 0;
  const rotation = Math.abs(Number(s.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? s.tags?.rotate ?? 0)) % 180;
  const swap = rotation === 90;
  return {
    width: swap ? s.height : s.width,
    height: swap ? s.width : s.height,
    fps,
    frames: framesExact ? nb : Math.round(durationS * fps),
    framesExact,
    durationS,
    codec: s.codec_name ?? 'unknown',
  };
}

export interface VideoFrame {
  index: number;
  /** The frame as decoded: full size, or with `forModel` the size the model's resize step gives it. */
  image: RgbImage;
  /** With `forModel`: the video's own frame size (what boxes map back to; preprocess's `source`). */
  source?: { width: number; height: number };
  /** With `forModel.keepFull`, when the frame was scaled: the full-size frame from the same decode. */
  full?: RgbImage;
}

export interface ReadVideoOptions extends VideoToolOptions {
  /** Stop after this many frames. */
  maxFrames?: number;
  /** What probeVideo said of this file already: it is not probed a second time (a stream is not opened twice). */
  info?: VideoInfo;
  /** Refuse videos whose frames have more pixels than this, judged from ffprobe before decoding. Default 50 MP. */
  maxPixels?: number;
  signal?: AbortSignal;
  /**
   * Frames for this model: ffmpeg resizes each (MODEL_SCALE_FLAGS) to the size the model's resize step gives it
   * (letterbox: the fitted size before padding; center-crop: the covering size before the crop; stretch: the input
   * size), so the pipe and this process carry 160×90 frames for a 160-px model instead of full ones, and
   * `preprocess(image, spec, { source })` only pads or crops and packs. Frames that would have to grow keep their size.
   * With `keepFull` each frame also carries the full-size frame (to draw on, to crop from) from the same decode,
   * and the model-size one is byte for byte what it is without keepFull, so results never depend on it.
   */
  forModel?: { spec: PreprocessSpec; keepFull?: boolean };
  /**
   * Nice value for the ffmpeg child (default 0: this process's priority). `cvopt predict` raises it so the inference
   * thread, the pipeline's bottleneck on a CPU engine, wins the cores whenever the two contend; the decoder has slack
   * and catches up while the engine waits for nothing. Only ever lowers ffmpeg's priority; a failure is ignored.
   */
  nice?: number;
  /** Told the ffmpeg child's pid once it runs (a service counts its memory against its own cap). */
  onSpawn?: (pid: number) => void;
  /**
   * ffmpeg's decoder threads (`-threads`); 0 lets ffmpeg choose (a thread per core and one more). Default: one
   * thread for frames up to 1280×720 ({@link SINGLE_THREAD_DECODE_MAX_PIXELS}), ffmpeg's choice above.
   */
  decodeThreads?: number;
}

/**
 * Frames up to this size are decoded on one ffmpeg thread by default. Frame threading buys decode speed a small
 * video does not need and costs CPU the inference wants: car-detection.mp4 (768×432 H.264, 377 frames) took
 * 0.74 s of CPU with ffmpeg's default threads against 0.60 s with one (1.46 ms a frame of wall time, so one thread
 * still decodes 680 fps) on the 2-core AMD EPYC of the README's figures. H.264 decoding is bit-exact whatever the
 * thread count, so the frames are the same.
 */
export const SINGLE_THREAD_DECODE_MAX_PIXELS = 1280 * 720;

interface DecodePlan {
  /** Bytes ffmpeg writes per frame. */
  frameBytes: number;
  /** The frame's own size, and the size it is scaled to (the same when not scaled). */
  source: { width: number; height: number };
  scaled: { width: number; height: number };
  /** Whether each frame is the full one stacked over the scaled one, padded to the full width (forModel.keepFull). */
  stacked: boolean;
  /** Whether frames carry `source` (forModel was asked for). */
  forModel: boolean;
  ffmpeg: string;
  args: string[];
}

/**
 * How ffmpeg resizes a frame for the model (forModel). swscale's bilinear widens its filter when it shrinks, as
 * libvips does for an image file, and with exact rounding and chroma interpolated at full resolution a frame comes
 * within 4 grey levels of what preprocess() makes of the same frame saved as PNG (car-detection.mp4, 40 frames, at
 * 160, 320 and 640 px). Point-sampled bilinear on the full frame (preprocess of an RgbImage) was up to 69 levels
 * off at 160 px, where 4.8 source pixels fall between two samples.
 */
export const MODEL_SCALE_FLAGS = 'bilinear+accurate_rnd+full_chroma_int';

/**
 * The size frames of a `width`×`height` video come in with `forModel: { spec }`: modelFrameSize's, unless that would
 * enlarge the frame, which then crosses as it is (fewer bytes than the enlarged one; preprocess resamples it).
 */
export function videoFrameSize(width: number, height: number, spec: PreprocessSpec): { width: number; height: number } {
  const want = modelFrameSize(width, height, spec);
  return want.width <= width && want.height <= height ? want : { width, height };
}

/** What both readers decide before ffmpeg runs: the frame size (checked against maxPixels) and the command line. */
async function decodePlan(file: string, opts: ReadVideoOptions): Promise<DecodePlan> {
  const info = opts.info ?? (await probeVideo(file, opts));
  if (opts.signal?.aborted) throw cancelledRead(file);
  const { width: srcW, height: srcH } = info;
  // the header's frame size sets every buffer (node's and ffmpeg's): a forged 60 000×60 000 is refused here
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (srcW * srcH > maxPixels) {
    throw new CvoptError('IMAGE_TOO_LARGE', `${file}: video frames are ${srcW}x${srcH}, ${((srcW * srcH) / 1e6).toFixed(1)} MP, over the limit of ${(maxPixels / 1e6).toFixed(1)} MP`, {
      where: { file },
      hint: 'scale the video down (ffmpeg -vf scale=1920:-2), or raise maxPixels if such videos are expected',
      details: { width: srcW, height: srcH, maxPixels },
    });
  }
  const source = { width: srcW, height: srcH };
  const scaled = opts.forModel ? videoFrameSize(srcW, srcH, opts.forModel.spec) : source;
  const scales = scaled.width !== srcW || scaled.height !== srcH;
  const stacked = scales && opts.forModel?.keepFull === true;
  const ffmpeg = opts.ffmpegPath ?? process.env.CVOPT_FFMPEG ?? 'ffmpeg';
  const threads = opts.decodeThreads ?? (srcW * srcH <= SINGLE_THREAD_DECODE_MAX_PIXELS ? 1 : 0);
  // The filters (the scale to the model's size) on as many threads as the decoder: ffmpeg's default of a thread
  // per core costs a one-thread decode about a fifth more CPU for the same bytes (car-detection.mp4 to 160×90).
  const args = ['-v', 'error', '-nostdin', '-threads', String(threads), ...(threads === 1 ? ['-filter_threads', '1'] : []), ...videoInputArgs(file, opts), '-map', '0:v:0'];
  if (opts.maxFrames !== undefined) args.push('-frames:v', String(Math.max(0, Math.floor(opts.maxFrames))));
  // One filter chain for the model-size frame, alone or under the full one: the same bytes either way.
  const toModel = `scale=${scaled.width}:${scaled.height}:flags=${MODEL_SCALE_FLAGS},format=rgb24`;
  if (stacked) args.push('-vf', `split[a][b];[a]format=rgb24[f];[b]${toModel},pad=${srcW}:${scaled.height}:0:0[s];[f][s]vstack`);
  else if (scales) args.push('-vf', toModel);
  args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  const frameBytes = stacked ? srcW * (srcH + scaled.height) * 3 : scaled.width * scaled.height * 3;
  return { frameBytes, source, scaled, stacked, forModel: opts.forModel !== undefined, ffmpeg, args };
}

/** The frame a reader hands out for `data`, ffmpeg's bytes for one frame as the plan lays them out. */
function frameOf(plan: DecodePlan, index: number, data: Uint8Array): VideoFrame {
  const { source, scaled } = plan;
  const extra = plan.forModel ? { source } : {};
  if (!plan.stacked) return { index, image: { data, width: scaled.width, height: scaled.height }, ...extra };
  // Full frame on top, the model-size one below it padded to the full width: take its rows out.
  const top = source.width * source.height * 3;
  const row = scaled.width * 3;
  const small = new Uint8Array(row * scaled.height);
  for (let y = 0; y < scaled.height; y++) {
    const s = top + y * source.width * 3;
    small.set(data.subarray(s, s + row), y * row);
  }
  return { index, image: { data: small, width: scaled.width, height: scaled.height }, full: { data: data.subarray(0, top), width: source.width, height: source.height }, ...extra };
}

const cancelledRead = (file: string) => new CvoptError('CANCELLED', `reading ${file} was cancelled`, { where: { file } });

/**
 * ffmpeg under watch for a frame reader: its pid reported, killed when the signal aborts, and `stop()` (the
 * reader's finally) kills it if the reader ended first (a break, an error) and drops the abort listener.
 */
function watchDecoder(child: ChildProcess, opts: ReadVideoOptions): { closed: Promise<number | null>; stop: () => void } {
  if (child.pid !== undefined && opts.nice) {
    try {
      // Relative to the process's priority (its main thread's), not the calling thread's: the video decode thread has
      // already lowered its own by the same amount, and ffmpeg, started from that thread, inherited it.
      setPriority(child.pid, Math.min(19, getPriority(process.pid) + opts.nice));
    } catch {
      // gone already, or a platform without nice: ffmpeg keeps this process's priority
    }
  }
  if (child.pid !== undefined) opts.onSpawn?.(child.pid);
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const onAbort = () => child.kill('SIGKILL');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    closed,
    stop: () => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** After the last frame: cancelled, corrupt (ffmpeg failed or complained, even with exit 0), or cut inside a frame. */
function decodeEnded(file: string, code: number | null, stderr: string, filled: number, index: number, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelledRead(file);
  if (code !== 0 || stderr.trim()) throw invalidVideo(file, reasonFrom(stderr, file) + (code ? ` (ffmpeg exit ${code})` : ''));
  if (filled !== 0) throw invalidVideo(file, `stream ended ${filled} bytes into frame ${index}`);
}

/**
 * Decodes every frame to RGB with ffmpeg writing rawvideo to a pipe, one exact frame-sized buffer per frame
 * (each byte copied once; a pipe chunk that holds a whole frame is handed out without a copy). Breaking out
 * of the loop or aborting the signal kills ffmpeg. Corruption that ffmpeg reports — even when it carries on
 * and exits 0, as with a truncated MP4 — ends the iteration with VIDEO_INVALID after the frames it did decode.
 */
export async function* readVideoFrames(file: string, opts: ReadVideoOptions = {}): AsyncGenerator<VideoFrame> {
  const plan = await decodePlan(file, opts);
  const { frameBytes, ffmpeg, args } = plan;
  const { signal } = opts;
  const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const decoder = watchDecoder(child, opts);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < STDERR_CAP) stderr += d;
  });
  try {
    await spawned(child, ffmpeg);
    let frame = new Uint8Array(frameBytes);
    let filled = 0;
    let index = 0;
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let off = 0;
      while (off < chunk.length) {
        if (filled === 0 && chunk.length - off >= frameBytes) {
          yield frameOf(plan, index++, new Uint8Array(chunk.buffer, chunk.byteOffset + off, frameBytes));
          off += frameBytes;
          continue;
        }
        const n = Math.min(frameBytes - filled, chunk.length - off);
        frame.set(chunk.subarray(off, off + n), filled);
        filled += n;
        off += n;
        if (filled === frameBytes) {
          yield frameOf(plan, index++, frame);
          frame = new Uint8Array(frameBytes);
          filled = 0;
        }
      }
    }
    decodeEnded(file, await decoder.closed, stderr, filled, index, signal);
  } finally {
    decoder.stop();
  }
}

export interface BlockingReadOptions extends ReadVideoOptions {
  /**
   * Fill one buffer over and over: each frame's data is valid only until the next frame is asked for. Default
   * false (a fresh buffer per frame, which the caller may keep or transfer).
   */
  reuse?: boolean;
}

/** Where ffmpeg writes: a FIFO whose read end blocks, and an unlinked append-only file for its messages. */
interface DecodeOutputs {
  /** Our read end of the FIFO, in blocking mode. */
  frames: number;
  /** The FIFO's other end, for ffmpeg's stdout; ours to close once ffmpeg holds it. */
  framesIn: number;
  /** ffmpeg's stderr: a file, so a flood of messages can never block ffmpeg while this thread waits on a frame. */
  messages: number;
}

function openDecodeOutputs(): DecodeOutputs {
  const dir = mkdtempSync(join(tmpdir(), 'cvopt-decode-'));
  try {
    const fifo = join(dir, 'frames');
    const made = spawnSync('mkfifo', ['-m', '600', fifo]);
    if (made.status !== 0) {
      throw new CvoptError('DEPENDENCY_MISSING', `mkfifo is not installed or failed: ${made.error?.message ?? made.stderr.toString().trim()}`, {
        hint: 'install coreutils (Debian/Ubuntu: apt-get install coreutils); the video decode thread reads ffmpeg through a FIFO',
        cause: made.error,
      });
    }
    // Opening one end of a FIFO waits for the other: a read-write descriptor first lets ours (blocking, read-only)
    // open at once, and then ffmpeg's (write-only). The read-write one is closed again: were it ffmpeg's, ffmpeg
    // would be a reader of its own output and, its reader killed (SIGKILL, a crash), would wait forever on a full
    // pipe instead of failing on it.
    const opener = openSync(fifo, constants.O_RDWR);
    const opened: number[] = [];
    try {
      for (const flags of [constants.O_RDONLY, constants.O_WRONLY]) opened.push(openSync(fifo, flags));
      opened.push(openSync(join(dir, 'stderr'), constants.O_RDWR | constants.O_CREAT | constants.O_APPEND, 0o600));
    } catch (e) {
      for (const fd of opened) closeSync(fd);
      throw e;
    } finally {
      closeSync(opener);
    }
    const [frames, framesIn, messages] = opened as [number, number, number];
    return { frames, framesIn, messages };
  } finally {
    // The descriptors keep both alive; nothing is left on disk.
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A read that may wait: interrupted or (were the descriptor ever non-blocking) not ready, so try again. */
const RETRY = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);

/** Fills `buf` from the blocking descriptor; less than its length only at end of stream. */
async function readFull(fd: number, buf: Uint8Array): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    let n: number;
    try {
      n = readSync(fd, buf, got, buf.length - got, null);
    } catch (e) {
      if (!RETRY.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * readVideoFrames for a thread of its own (the decode worker of readPreparedFrames): the same ffmpeg command and
 * frames, byte for byte, but each frame is read off a FIFO with blocking readSync calls straight into its buffer
 * (with `reuse`, always the same one), which costs about a fifth of the CPU of a stream's 64 KiB chunks, their
 * events and the copy that joins them. The thread sleeps in read() while ffmpeg decodes, so never call it on a thread
 * that has other work. Its event loop runs between frames only: an abort kills ffmpeg from there, and a caller on
 * another thread that must stop a read stuck on a stalled stream kills the pid given to onSpawn (the read then
 * ends). ffmpeg's messages go to a file, not a pipe, so they cannot fill up and stall ffmpeg while this thread waits
 * for a frame; only the first STDERR_CAP bytes are kept, as readVideoFrames keeps them. Errors are readVideoFrames'.
 */
export async function* readVideoFramesBlocking(file: string, opts: BlockingReadOptions = {}): AsyncGenerator<VideoFrame> {
  const plan = await decodePlan(file, opts);
  const { frameBytes, ffmpeg, args } = plan;
  const { signal } = opts;
  const out = openDecodeOutputs();
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(ffmpeg, args, { stdio: ['ignore', out.framesIn, out.messages] });
  } catch (e) {
    for (const fd of [out.frames, out.messages]) closeSync(fd);
    throw e;
  } finally {
    // From here ffmpeg holds the only write end: when it exits, for whatever reason, the read sees end of stream.
    closeSync(out.framesIn);
  }
  const decoder = watchDecoder(child, opts);
  try {
    await spawned(child, ffmpeg);
    let frame = new Uint8Array(frameBytes);
    let filled = 0;
    let index = 0;
    while (!signal?.aborted) {
      filled = await readFull(out.frames, frame);
      if (filled < frameBytes) break;
      filled = 0;
      yield frameOf(plan, index++, frame);
      if (!opts.reuse) frame = new Uint8Array(frameBytes);
      // Keep the head of a long run of messages, which is all that is reported, and let the file not grow.
      if (fstatSync(out.messages).size > 4 * STDERR_CAP) ftruncateSync(out.messages, STDERR_CAP);
    }
    const code = await decoder.closed;
    const head = Buffer.alloc(STDERR_CAP);
    const stderr = signal?.aborted ? '' : head.toString('utf8', 0, readSync(out.messages, head, 0, STDERR_CAP, 0));
    decodeEnded(file, code, stderr, filled, index, signal);
  } finally {
    decoder.stop();
    for (const fd of [out.frames, out.messages]) closeSync(fd);
  }
}
