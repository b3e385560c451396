import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';

/** Image extensions a dataset may hold (compared lower-case). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp', '.webp'] as const;

export function isImageFile(path: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(extname(path).toLowerCase());
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Every file under `dir`, recursively, sorted so that listings (and everything built on them) are stable. */
export function listFilesRecursive(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() || entry.isSymbolicLink()) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * The label file of an image, by the Ultralytics rule: the last `/images/` path component becomes `/labels/` and
 * the extension becomes `.txt`. An image outside any `images/` folder keeps its label beside it.
 */
export function labelPathFor(image: string): string {
  const marker = '/images/';
  const at = image.lastIndexOf(marker);
  const swapped = at < 0 ? image : `${image.slice(0, at)}/labels/${image.slice(at + marker.length)}`;
  const ext = extname(swapped);
  return `${ext ? swapped.slice(0, -ext.length) : swapped}.txt`;
}
