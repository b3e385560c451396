import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer secrets look like `cvopt_<id>_<secret>`: the id finds the row, the secret is compared against its
 * stored SHA-256 in constant time. The secret is 32 random bytes, so a fast hash is enough (no dictionary to
 * guess from); the plain value is shown once and never stored.
 */
const PREFIX = 'cvopt_';

export function newId(prefix: string): string {
  return `${prefix}${randomBytes(9).toString('base64url').replace(/[-_]/g, 'x')}`;
}

export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function formatBearer(id: string, secret: string): string {
  return `${PREFIX}${id}_${secret}`;
}

/**
 * Is `header` exactly `Bearer <expected>`? Both sides are hashed to the same length first, so the comparison takes
 * the same time whatever the caller sent (no length or prefix leak).
 */
export function bearerEquals(header: string | undefined, expected: string | undefined): boolean {
  if (!expected || !header) return false;
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  const a = createHash('sha256').update(m ? m[1]! : '').digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && m !== null;
}

/** Split a bearer value into id and secret, or undefined when it is not one of ours. */
export function parseBearer(value: string): { id: string; secret: string } | undefined {
  if (!value.startsWith(PREFIX)) return undefined;
  const rest = value.slice(PREFIX.length);
  const cut = rest.indexOf('_');
  if (cut <= 0) return undefined;
  const id = rest.slice(0, cut);
  const secret = rest.slice(cut + 1);
  if (!/^[A-Za-z0-9]{1,40}$/.test(id) || secret.length < 16 || secret.length > 128) return undefined;
  return { id, secret };
}
