import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { CvoptError } from '@cvopt/core';
import type { RgbImage } from './image.js';
import type { VideoToolOptions } from './video.js';

export interface VideoWriterOptions extends VideoToolOptions {
  width: number;
  height: number;
  fps: number;
  /** x264 constant rate factor: lower is better quality and bigger files (default 23, ffmpeg's own). */
  crf?: number;
  /** x264 preset (default 'veryfast': encoding must keep up with inference on a small CPU). */
  preset?: string;
}

/**
 * Encodes RGB frames to an H.264 MP4 with ffmpeg reading rawvideo from a pipe. The MP4 is fragmented
 * (every fragment self-contained), so a file cut short by a crash or a kill still plays up to its last fragment;
 * `close()` ends stdin and waits, which writes the final fragment. ffmpeg runs in its own process group so a
 * terminal's Ctrl-C reaches only cvopt, which then closes the file cleanly.
 */
export class VideoWriter {
  private readonly child: ChildProcess;
  private readonly frameBytes: number;
  private stderr = '';
  private failed: Error | undefined;
  private frames = 0;
  private closing: Promise<void> | undefined;
  /** Settles with ffmpeg's exit code once it has exited. */
  private readonly exited: Promise<number | null>;

  constructor(
    readonly file: string,
    private readonly o: VideoWriterOptions,
  ) {
    if (!Number.isInteger(o.width) || !Number.isInteger(o.height) || o.width < 2 || o.height < 2) {
      throw new CvoptError('INVALID_ARGUMENT', `video size must be at least 2x2 integers, got ${o.width}x${o.height}`, { where: { field: 'width/height' } });
    }
    if (!(o.fps > 0) || !Number.isFinite(o.fps)) throw new CvoptError('INVALID_ARGUMENT', `video fps must be positive, got ${o.fps}`, { where: { field: 'fps' } });
    this.frameBytes = o.width * o.height * 3;
    const ffmpeg = o.ffmpegPath ?? process.env.CVOPT_FFMPEG ?? 'ffmpeg';
    // yuv420p needs even sides: pad by one pixel where needed rather than refuse odd-sized sources.
    const pad = o.width % 2 || o.height % 2 ? ['-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2'] : [];
    const args = [
      '-v', 'error', '-nostdin', '-y',
      '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${o.width}x${o.height}`, '-r', String(o.fps), '-i', 'pipe:0',
      ...pad,
      '-c:v', 'libx264', '-preset', o.preset ?? 'veryfast', '-crf', String(o.crf ?? 23), '-pix_fmt', 'yuv420p',
      '-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-an',
      file,
    ];
    this.child = spawn(ffmpeg, args, { stdio: ['pipe', 'ignore', 'pipe'], detached: true });
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (this.stderr.length < 16_384) this.stderr += d;
    });
    this.child.once('error', (e) => {
      this.failed = new CvoptError('DEPENDENCY_MISSING', `ffmpeg is not installed or not runnable (${ffmpeg})`, {
        hint: 'install FFmpeg (Debian/Ubuntu: apt-get install ffmpeg) or point CVOPT_FFMPEG at the ffmpeg binary',
        cause: e,
      });
    });
    this.child.stdin!.on('error', (e) => {
      this.failed ??= this.encodeError(e);
    });
  }

  get written(): number {
    return this.frames;
  }

  private encodeError(cause?: unknown): CvoptError {
    return new CvoptError('VIDEO_INVALID', `ffmpeg could not encode ${this.file}: ${this.stderr.trim().split('\n').slice(0, 3).join('; ') || 'it stopped reading frames'}`, {
      where: { file: this.file },
      hint: 'check that the output folder is writable and the disk is not full',
      cause,
    });
  }

  /** Queue one frame; resolves when the pipe has room again (backpressure on the producer). */
  async write(image: RgbImage): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.closing) throw new CvoptError('INVALID_ARGUMENT', `video writer for ${this.file} is closed`);
    if (image.width !== this.o.width || image.height !== this.o.height || image.data.length !== this.frameBytes) {
      throw new CvoptError('TENSOR_SHAPE', `frame is ${image.width}x${image.height} but ${this.file} is ${this.o.width}x${this.o.height}`);
    }
    this.frames++;
    const stdin = this.child.stdin!;
    if (!stdin.write(image.data)) {
      await Promise.race([once(stdin, 'drain'), this.exited]);
    }
    if (this.failed) throw this.failed;
  }

  /** Finish the file: every frame written so far ends up in it. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.child.stdin!.end();
      const code = await this.exited;
      if (this.failed) throw this.failed;
      if (code !== 0) throw this.encodeError();
    })();
    return this.closing;
  }

  /** Stop at once (an error elsewhere); the file may be incomplete. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
