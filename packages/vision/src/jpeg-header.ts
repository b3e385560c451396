/**
 * Size and EXIF orientation from a JPEG's markers, read in microseconds without libvips (whose metadata() call
 * costs a thread-pool round trip per image: about 0.7 ms of a request's latency). Returns undefined for anything
 * it is not sure about — no SOF, truncated segments, a malformed EXIF block — and the caller then asks libvips,
 * which also words the error. Pixel data is never looked at: the decoder still refuses corrupt scans.
 */
export interface JpegHeader {
  width: number;
  height: number;
  /** EXIF orientation 1–8 (1 when absent). */
  orientation: number;
  /** The start-of-frame marker: 0xC0 baseline, 0xC1 extended sequential, 0xC2 progressive, … */
  sof: number;
  /** Bits per sample (8, or 12/16 for the rare extended and lossless files). */
  precision: number;
  /** Colour components in the frame: 1 grey, 3 YCbCr (or RGB), 4 CMYK/YCCK. */
  components: number;
  /** Each component's sampling factors as written in the frame header, horizontal << 4 | vertical (0x22 = 2×2). */
  sampling: number[];
  /** An APP2 ICC_PROFILE segment was seen: libvips then converts the pixels from that profile to sRGB. */
  icc: boolean;
  /** An Adobe APP14 segment was seen: it can declare the three channels RGB rather than YCbCr, or CMYK inverted. */
  adobe: boolean;
  /**
   * Every marker up to the first scan was read, there was one frame header and no EXIF block after it: only
   * then are `icc`, `adobe` and `orientation` known to be all libvips will see. When false the size is still
   * right (it is what the frame header says), but nothing should be inferred from the absence of a marker.
   */
  complete: boolean;
}

/** Start-of-frame markers: baseline, extended, progressive, lossless, and their differential/arithmetic forms. */
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

export function isJpeg(buf: Uint8Array): boolean {
  return buf.length > 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
}

export function readJpegHeader(buf: Buffer): JpegHeader | undefined {
  if (!isJpeg(buf)) return undefined;
  let orientation = 1;
  let icc = false;
  let adobe = false;
  let frame: Omit<JpegHeader, 'orientation' | 'icc' | 'adobe' | 'complete'> | undefined;
  // After the frame header the walk only gathers facts for the callers that need the whole picture; whatever
  // goes wrong there leaves the size as read and marks the header incomplete, it never turns it into undefined.
  const done = (complete: boolean): JpegHeader | undefined => (frame ? { ...frame, orientation, icc, adobe, complete } : undefined);
  let i = 2;
  while (i + 4 <= buf.length) {
    if (buf[i] !== 0xff) return done(false);
    const marker = buf[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    // Markers without a length: TEM and RSTn; EOI/SOS before a frame header means there is no usable SOF.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    if (marker === 0xda) return done(true);
    if (marker === 0xd9) return done(false);
    const len = buf.readUInt16BE(i + 2);
    if (len < 2 || i + 2 + len > buf.length) return done(false);
    const body = i + 4;
    const end = i + 2 + len;
    if (marker === 0xe1 && len >= 8 && buf.toString('latin1', body, body + 6) === 'Exif\0\0') {
      if (frame) return done(false); // libvips reads EXIF wherever it is; the size above was computed without it
      const o = exifOrientation(buf, body + 6, end);
      if (o === undefined) return undefined;
      orientation = o;
    } else if (marker === 0xe2 && len >= 14 && buf.toString('latin1', body, body + 12) === 'ICC_PROFILE\0') {
      icc = true;
    } else if (marker === 0xee && len >= 7 && buf.toString('latin1', body, body + 5) === 'Adobe') {
      adobe = true;
    } else if (SOF.has(marker)) {
      if (frame) return done(false); // a second frame header: libjpeg refuses the file
      if (len < 8) return undefined;
      const height = buf.readUInt16BE(body + 1);
      const width = buf.readUInt16BE(body + 3);
      if (width === 0 || height === 0) return undefined;
      const components = buf[body + 5]!;
      const sampling: number[] = [];
      for (let k = 0; k < components && body + 8 + 3 * k <= end; k++) sampling.push(buf[body + 7 + 3 * k]!);
      frame = { width, height, sof: marker, precision: buf[body]!, components, sampling };
      if (sampling.length !== components) return done(false);
    }
    i = end;
  }
  return done(false);
}

/** Orientation (tag 0x0112) from IFD0 of the TIFF block at [start, end); 1 when the tag is absent. */
function exifOrientation(buf: Buffer, start: number, end: number): number | undefined {
  if (start + 8 > end) return undefined;
  const order = buf.toString('latin1', start, start + 2);
  if (order !== 'II' && order !== 'MM') return undefined;
  const le = order === 'II';
  const u16 = (p: number) => (le ? buf.readUInt16LE(p) : buf.readUInt16BE(p));
  const u32 = (p: number) => (le ? buf.readUInt32LE(p) : buf.readUInt32BE(p));
  if (u16(start + 2) !== 42) return undefined;
  const ifd = start + u32(start + 4);
  if (ifd + 2 > end) return undefined;
  const n = u16(ifd);
  if (ifd + 2 + n * 12 > end) return undefined;
  for (let k = 0; k < n; k++) {
    const e = ifd + 2 + k * 12;
    if (u16(e) !== 0x0112) continue;
    const v = u16(e + 8);
    return v >= 1 && v <= 8 ? v : undefined;
  }
  return 1;
}
