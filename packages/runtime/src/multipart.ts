import { CvoptError } from '@cvopt/core';

/**
 * A small multipart/form-data reader over an already size-capped body: enough to find the uploaded file part.
 * Fastify's body limit bounds the input, so this never buffers more than the configured body limit.
 */
export interface FormPart {
  name: string | undefined;
  filename: string | undefined;
  contentType: string | undefined;
  data: Buffer;
}

export function boundaryOf(contentType: string): string {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const b = m?.[1] ?? m?.[2];
  if (!b || b.length > 200) {
    throw new CvoptError('INVALID_ARGUMENT', 'multipart/form-data without a valid boundary parameter', {
      where: { field: 'content-type' },
      hint: 'let your HTTP client build the multipart body (curl -F image=@photo.jpg)',
    });
  }
  return b;
}

export function parseMultipart(body: Buffer, contentType: string, maxParts = 16): FormPart[] {
  const delimiter = Buffer.from(`--${boundaryOf(contentType)}`);
  const next = Buffer.from(`\r\n--${boundaryOf(contentType)}`);
  const parts: FormPart[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw malformed('the boundary never appears in the body');
  for (;;) {
    pos += delimiter.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // closing "--"
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd - pos > 8192) throw malformed('a part has more than 8 KiB of headers');
    if (headerEnd < 0) throw malformed('a part has no end of headers');
    const headers = body.subarray(pos, headerEnd).toString('latin1').split('\r\n');
    const end = body.indexOf(next, headerEnd + 4);
    if (end < 0) throw malformed('the body ends without a closing boundary');
    const part: FormPart = { name: undefined, filename: undefined, contentType: undefined, data: body.subarray(headerEnd + 4, end) };
    for (const h of headers) {
      const [k, ...rest] = h.split(':');
      const v = rest.join(':').trim();
      if (k?.toLowerCase() === 'content-disposition') {
        part.name = /\bname="([^"]*)"/i.exec(v)?.[1];
        part.filename = /\bfilename="([^"]*)"/i.exec(v)?.[1];
      } else if (k?.toLowerCase() === 'content-type') part.contentType = v.toLowerCase();
    }
    parts.push(part);
    if (parts.length > maxParts) {
      throw new CvoptError('INVALID_ARGUMENT', `the multipart body has more than ${maxParts} parts`, { where: { field: 'body' }, hint: 'send one image part (curl -F image=@photo.jpg), or raise multipartMaxParts' });
    }
    pos = end + 2;
  }
  return parts;
}

/** The uploaded file: the part named image or file, else the first part carrying a filename. */
export function filePart(parts: FormPart[]): FormPart {
  const p = parts.find((x) => x.name === 'image' || x.name === 'file') ?? parts.find((x) => x.filename !== undefined);
  if (!p || p.data.length === 0) {
    throw new CvoptError('INVALID_ARGUMENT', 'the multipart body has no file part', {
      where: { field: 'image' },
      hint: 'send the image in a form field named "image" (curl -F image=@photo.jpg)',
    });
  }
  return p;
}

function malformed(why: string): CvoptError {
  return new CvoptError('INVALID_ARGUMENT', `malformed multipart body: ${why}`, { hint: 'let your HTTP client build the multipart body' });
}
