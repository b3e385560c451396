import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { CvoptError } from '@cvopt/core';

export const IMAGE_EXTS = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff', '.gif']);
export const VIDEO_EXTS = new Set(['.mp4', '.mov', '.avi', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.ts', '.wmv', '.flv']);

/** One input of a predict run: a still image, or a video file or stream read frame by frame. */
export interface SourceItem {
  kind: 'image' | 'video';
  /** A file path or a stream URL. */
  path: string;
  /** File name without extension, made unique within the run: names output files. */
  stem: string;
}

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;
const GLOB_RE = /[*?[]/;

export function isStreamUrl(s: string): boolean {
  return URL_RE.test(s);
}

function kindOf(file: string): SourceItem['kind'] | undefined {
  const ext = extname(file).toLowerCase();
  return IMAGE_EXTS.has(ext) ? 'image' : VIDEO_EXTS.has(ext) ? 'video' : undefined;
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function listFolder(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => !n.startsWith('.') && kindOf(n) !== undefined)
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}

/**
 * What `--source` names, expanded to files in a stable order: an image or video file, a folder (its images and
 * videos, sorted by name), a glob (wildcards in the last path part: `data/*.jpg`), a `.txt` list (one path or URL per
 * line, relative to the list), or a stream URL ffmpeg can open (rtsp://, http://, …).
 */
export function resolveSources(source: string): SourceItem[] {
  let paths: string[];
  if (isStreamUrl(source)) paths = [source];
  else if (GLOB_RE.test(basename(source)) && !existsSync(source)) {
    const dir = dirname(source);
    if (GLOB_RE.test(dir)) {
      throw new CvoptError('INVALID_ARGUMENT', `--source ${source}: wildcards are supported in the last path part only`, { where: { field: '--source' }, hint: 'e.g. --source "images/*.jpg"; use a .txt list for files across folders' });
    }
    if (!existsSync(dir)) throw new CvoptError('NOT_FOUND', `--source ${source}: folder ${dir} does not exist`, { where: { field: '--source', file: dir } });
    const re = globToRegExp(basename(source));
    paths = listFolder(dir).filter((p) => re.test(basename(p)));
    if (!paths.length) throw new CvoptError('NOT_FOUND', `--source ${source} matches no image or video files`, { where: { field: '--source' }, hint: 'check the pattern; quote it so the shell does not expand it' });
  } else if (!existsSync(source)) {
    throw new CvoptError('NOT_FOUND', `--source ${source} does not exist`, { where: { field: '--source', file: source }, hint: 'pass an image, a video, a folder, a glob, a .txt list or a stream URL' });
  } else if (statSync(source).isDirectory()) {
    paths = listFolder(source);
    if (!paths.length) throw new CvoptError('NOT_FOUND', `folder ${source} holds no image or video files`, { where: { file: source }, hint: `supported: ${[...IMAGE_EXTS, ...VIDEO_EXTS].join(' ')}` });
  } else if (extname(source).toLowerCase() === '.txt') {
    const base = dirname(resolve(source));
    const lines = readFileSync(source, 'utf8').split(/\r?\n/);
    paths = [];
    lines.forEach((raw, n) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      const p = isStreamUrl(line) || isAbsolute(line) ? line : join(base, line);
      if (!isStreamUrl(p) && !existsSync(p)) {
        throw new CvoptError('NOT_FOUND', `${source}:${n + 1}: ${line} does not exist`, { where: { file: source, line: n + 1 }, hint: 'paths in a list are relative to the list file' });
      }
      paths.push(p);
    });
    if (!paths.length) throw new CvoptError('INVALID_ARGUMENT', `${source} lists no files`, { where: { file: source }, hint: 'one image, video or URL per line' });
  } else paths = [source];

  const used = new Map<string, number>();
  return paths.map((p) => {
    const kind = isStreamUrl(p) ? 'video' : kindOf(p);
    if (!kind) {
      throw new CvoptError('INVALID_ARGUMENT', `${p} is neither an image nor a video by its extension`, { where: { file: p }, hint: `images: ${[...IMAGE_EXTS].join(' ')}; videos: ${[...VIDEO_EXTS].join(' ')}` });
    }
    let stem = isStreamUrl(p) ? 'stream' : basename(p, extname(p));
    const n = used.get(stem) ?? 0;
    used.set(stem, n + 1);
    if (n > 0) stem = `${stem}_${n + 1}`;
    return { kind, path: p, stem };
  });
}

/** `dir`, or `dir2`, `dir3`, … — the first that does not exist yet (unless existOk). */
export function incrementRunDir(dir: string, existOk: boolean): string {
  const base = resolve(dir);
  if (existOk || !existsSync(base)) return base;
  for (let n = 2; ; n++) {
    const candidate = `${base}${n}`;
    if (!existsSync(candidate)) return candidate;
  }
}
