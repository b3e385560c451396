import { createReadStream } from 'node:fs';
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { createGunzip, createInflateRaw, crc32 } from 'node:zlib';
import { CvoptError } from '@cvopt/core';

/**
 * Our own extractor for .zip and .tar.gz uploads, written so that nothing in an archive can reach outside the
 * destination: no absolute paths, no `..`, no Windows drive paths, no symlinks, hard links or device files,
 * no entry that expands beyond its declared size, and caps on the number of entries, the total expanded bytes
 * and the expanded/compressed ratio (zip bombs) — enforced on the bytes actually produced, not on what the
 * headers claim. Files are created with O_EXCL, so a duplicate entry cannot overwrite an earlier one.
 */
export interface ArchiveLimits {
  maxEntries: number;
  maxExpandedBytes: number;
  /** Total expanded bytes / archive bytes. */
  maxRatio: number;
}

export interface ExtractResult {
  files: number;
  dirs: number;
  expandedBytes: number;
}

const MAX_NAME = 1024;
const MAX_DEPTH = 64;

function unsafe(entry: string, why: string, hint = 'rebuild the archive with plain relative paths and regular files only'): CvoptError {
  return new CvoptError('ARCHIVE_UNSAFE', `archive entry "${entry.slice(0, 200)}": ${why}`, { where: { field: entry.slice(0, 200) }, hint });
}

/** The entry's path relative to the destination, or ARCHIVE_UNSAFE; '' for entries that name the root itself. */
export function safeEntryPath(name: string): string {
  if (name.length > MAX_NAME) throw unsafe(name, `name longer than ${MAX_NAME} characters`);
  if (name.includes('\0')) throw unsafe(name, 'NUL byte in the name');
  const slashed = name.replace(/\\/g, '/');
  if (slashed.startsWith('/')) throw unsafe(name, 'absolute path');
  if (/^[A-Za-z]:/.test(slashed)) throw unsafe(name, 'Windows drive path');
  const parts = slashed.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe(name, 'path traversal ("..")');
  if (parts.length > MAX_DEPTH) throw unsafe(name, `nested deeper than ${MAX_DEPTH} folders`);
  return parts.join('/');
}

function target(dest: string, rel: string, name: string): string {
  const full = resolve(dest, rel);
  if (full !== dest && !full.startsWith(dest + sep)) throw unsafe(name, 'resolves outside the destination');
  return full;
}

class Budget {
  entries = 0;
  expanded = 0;
  constructor(
    readonly limits: ArchiveLimits,
    private readonly archiveBytes: number,
  ) {}

  entry(name: string): void {
    if (++this.entries > this.limits.maxEntries) throw unsafe(name, `more than ${this.limits.maxEntries} entries`, 'split the dataset or raise archiveMaxEntries');
  }

  bytes(n: number, name: string): void {
    this.expanded += n;
    if (this.expanded > this.limits.maxExpandedBytes) {
      throw unsafe(name, `the archive expands to more than ${this.limits.maxExpandedBytes} bytes`, 'raise archiveMaxExpandedBytes or upload less');
    }
    if (this.expanded > this.limits.maxRatio * Math.max(this.archiveBytes, 1) && this.expanded > 1024 * 1024) {
      throw unsafe(name, `expansion ratio above ${this.limits.maxRatio}:1 (a compression bomb?)`, 'raise archiveMaxRatio if the data is really this compressible');
    }
  }
}

async function createFile(path: string, name: string): Promise<FileHandle> {
  await mkdir(dirname(path), { recursive: true });
  try {
    return await open(path, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw unsafe(name, 'appears twice in the archive');
    throw e;
  }
}

// ---------------------------------------------------------------- zip

const EOCD = 0x06054b50;
const CEN = 0x02014b50;
const LOC = 0x04034b50;

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compSize: number;
  size: number;
  offset: number;
  mode: number;
  isDir: boolean;
}

async function readAt(fh: FileHandle, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  const { bytesRead } = await fh.read(buf, 0, len, pos);
  if (bytesRead !== len) throw new CvoptError('ARCHIVE_UNSAFE', 'the zip file is truncated', { hint: 'upload the whole archive again' });
  return buf;
}

function fileType(mode: number): 'file' | 'dir' | 'symlink' | 'device' {
  switch (mode & 0o170000) {
    case 0:
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    default:
      return 'device';
  }
}

async function zipEntries(fh: FileHandle, size: number, budget: Budget): Promise<ZipEntry[]> {
  const tailLen = Math.min(size, 22 + 65535);
  const tail = await readAt(fh, size - tailLen, tailLen);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new CvoptError('UNSUPPORTED_MEDIA_TYPE', 'the upload starts like a zip but has no zip directory', { hint: 'upload a complete .zip or .tar.gz' });
  const count = tail.readUInt16LE(at + 10);
  const cdSize = tail.readUInt32LE(at + 12);
  const cdOffset = tail.readUInt32LE(at + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    throw new CvoptError('UNSUPPORTED_MEDIA_TYPE', 'ZIP64 archives are not supported', { hint: 'upload a .tar.gz instead' });
  }
  if (count > budget.limits.maxEntries) throw unsafe('(zip directory)', `declares ${count} entries, more than ${budget.limits.maxEntries}`, 'split the dataset or raise archiveMaxEntries');
  if (cdOffset + cdSize > size) throw unsafe('(zip directory)', 'the directory points outside the file');
  const cd = await readAt(fh, cdOffset, cdSize);
  const out: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CEN) throw unsafe('(zip directory)', 'corrupt central directory');
    const madeBy = cd.readUInt16LE(p + 4);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    const compSize = cd.readUInt32LE(p + 20);
    const uncompressed = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const ext = cd.readUInt32LE(p + 38);
    const offset = cd.readUInt32LE(p + 42);
    const name = cd.subarray(p + 46, p + 46 + nameLen).toString(flags & 0x800 ? 'utf8' : 'latin1');
    p += 46 + nameLen + extraLen + commentLen;
    const unixMode = madeBy >> 8 === 3 ? ext >>> 16 : 0;
    const kind = fileType(unixMode);
    if (kind === 'symlink') throw unsafe(name, 'symbolic link');
    if (kind === 'device') throw unsafe(name, 'device, FIFO or socket');
    if (flags & 0x1) throw unsafe(name, 'encrypted entry', 'upload an unencrypted archive');
    if (method !== 0 && method !== 8) throw unsafe(name, `compression method ${method} is not supported (stored or deflate only)`);
    out.push({ name, method, flags, crc, compSize, size: uncompressed, offset, mode: unixMode, isDir: kind === 'dir' || name.endsWith('/') });
  }
  return out;
}

async function extractZip(file: string, dest: string, budget: Budget, archiveBytes: number): Promise<ExtractResult> {
  const fh = await open(file, 'r');
  const res: ExtractResult = { files: 0, dirs: 0, expandedBytes: 0 };
  try {
    const entries = await zipEntries(fh, archiveBytes, budget);
    for (const e of entries) {
      budget.entry(e.name);
      const rel = safeEntryPath(e.name);
      if (rel === '') continue;
      const path = target(dest, rel, e.name);
      if (e.isDir) {
        await mkdir(path, { recursive: true });
        res.dirs++;
        continue;
      }
      const loc = await readAt(fh, e.offset, 30);
      if (loc.readUInt32LE(0) !== LOC) throw unsafe(e.name, 'corrupt local header');
      const start = e.offset + 30 + loc.readUInt16LE(26) + loc.readUInt16LE(28);
      if (start + e.compSize > archiveBytes) throw unsafe(e.name, 'data runs past the end of the file');
      const out = await createFile(path, e.name);
      let written = 0;
      let crc = 0;
      try {
        const raw = createReadStream(file, { start, end: start + e.compSize - 1 });
        const source = e.compSize === 0 ? [] : e.method === 8 ? raw.pipe(createInflateRaw()) : raw;
        for await (const chunk of source as AsyncIterable<Buffer>) {
          written += chunk.length;
          if (written > e.size) throw unsafe(e.name, 'expands beyond its declared size (a compression bomb?)');
          budget.bytes(chunk.length, e.name);
          crc = crc32(chunk, crc);
          await out.write(chunk);
        }
      } catch (err) {
        if (err instanceof CvoptError) throw err;
        throw unsafe(e.name, `cannot be decompressed: ${(err as Error).message}`, 'upload an intact archive');
      } finally {
        await out.close();
      }
      if (written !== e.size || crc >>> 0 !== e.crc) throw unsafe(e.name, 'size or CRC does not match the directory (corrupt or tampered)', 'upload an intact archive');
      res.files++;
      res.expandedBytes += written;
    }
  } finally {
    await fh.close();
  }
  return res;
}

// ---------------------------------------------------------------- tar.gz

/** Pulls exact byte counts out of an async stream of chunks. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  async read(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    }
    if (this.buf.length < n) return undefined;
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
}

const cstr = (b: Buffer) => {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('utf8');
};

function octal(b: Buffer, name: string): number {
  if (b[0]! & 0x80) throw unsafe(name, 'size in base-256 (over 8 GiB)');
  const s = cstr(b).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw unsafe(name, 'corrupt tar header');
  return parseInt(s, 8);
}

function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 0;
  while (p < data.length) {
    const space = data.indexOf(0x20, p);
    if (space < 0) break;
    const len = parseInt(data.subarray(p, space).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0 || p + len > data.length) break;
    const rec = data.subarray(space + 1, p + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    p += len;
  }
  return out;
}

async function* counted(src: AsyncIterable<Buffer>, budget: Budget): AsyncGenerator<Buffer> {
  for await (const chunk of src) {
    budget.bytes(chunk.length, '(gzip stream)');
    yield chunk;
  }
}

async function extractTarGz(file: string, dest: string, budget: Budget): Promise<ExtractResult> {
  const res: ExtractResult = { files: 0, dirs: 0, expandedBytes: 0 };
  const gunzip = createReadStream(file).pipe(createGunzip());
  const reader = new ByteReader(counted(gunzip, budget)[Symbol.asyncIterator]());
  let longName: string | undefined;
  let pax: Record<string, string> = {};
  try {
    for (;;) {
      const h = await reader.read(512);
      if (!h) throw unsafe('(tar)', 'the archive ends in the middle of a header', 'upload an intact archive');
      if (h.every((b) => b === 0)) break;
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
      const rawName = cstr(h.subarray(0, 100));
      if (octal(h.subarray(148, 156), rawName) !== sum) throw unsafe(rawName, 'tar header checksum mismatch', 'upload an intact archive');
      const type = String.fromCharCode(h[156] || 48);
      const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? cstr(h.subarray(345, 500)) : '';
      const name = pax.path ?? longName ?? (prefix ? `${prefix}/${rawName}` : rawName);
      const size = pax.size !== undefined ? Number(pax.size) : octal(h.subarray(124, 136), name);
      if (!Number.isSafeInteger(size) || size < 0) throw unsafe(name, 'corrupt size');
      const padded = Math.ceil(size / 512) * 512;
      if (type === 'x' || type === 'g' || type === 'L') {
        if (size > 1024 * 1024) throw unsafe(name, 'extended header larger than 1 MiB');
        const data = await reader.read(padded);
        if (!data) throw unsafe(name, 'truncated extended header');
        if (type === 'x') pax = paxRecords(data.subarray(0, size));
        if (type === 'L') longName = cstr(data.subarray(0, size));
        continue;
      }
      longName = undefined;
      pax = {};
      budget.entry(name);
      if (type === '1') throw unsafe(name, 'hard link');
      if (type === '2' || type === 'K') throw unsafe(name, 'symbolic link');
      if (type === '3' || type === '4' || type === '6') throw unsafe(name, 'device or FIFO');
      if (type !== '0' && type !== '7' && type !== '5') throw unsafe(name, `unsupported tar entry type "${type}"`);
      const rel = safeEntryPath(name);
      const path = rel === '' ? dest : target(dest, rel, name);
      if (type === '5') {
        if (rel !== '') await mkdir(path, { recursive: true });
        res.dirs++;
        if (padded && !(await reader.read(padded))) throw unsafe(name, 'truncated');
        continue;
      }
      if (rel === '') throw unsafe(name, 'a file entry with an empty name');
      const out = await createFile(path, name);
      try {
        let left = size;
        while (left > 0) {
          const chunk = await reader.read(Math.min(left, 64 * 1024));
          if (!chunk) throw unsafe(name, 'the archive ends in the middle of this file', 'upload an intact archive');
          await out.write(chunk);
          left -= chunk.length;
        }
      } finally {
        await out.close();
      }
      if (padded > size && !(await reader.read(padded - size))) throw unsafe(name, 'truncated');
      res.files++;
      res.expandedBytes += size;
    }
  } catch (e) {
    gunzip.destroy();
    if (e instanceof CvoptError) throw e;
    throw new CvoptError('ARCHIVE_UNSAFE', `the .tar.gz cannot be read: ${(e as Error).message}`, { hint: 'upload an intact .tar.gz' });
  }
  gunzip.destroy();
  return res;
}

export type ArchiveKind = 'zip' | 'tar.gz';

/** Extract `file` (already sniffed as `kind`) into the empty directory `dest`. */
export async function extractArchive(file: string, kind: ArchiveKind, dest: string, limits: ArchiveLimits): Promise<ExtractResult> {
  const absDest = resolve(dest);
  await mkdir(absDest, { recursive: true });
  const size = (await stat(file)).size;
  const budget = new Budget(limits, size);
  return kind === 'zip' ? extractZip(file, absDest, budget, size) : extractTarGz(file, absDest, budget);
}
