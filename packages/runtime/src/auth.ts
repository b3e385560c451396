import { timingSafeEqual, createHash } from 'node:crypto';
import { CvoptError } from '@cvopt/core';
import type { Role } from './config.js';

/** What a route needs. viewer: predict; engineer: predict, model, metrics; admin: everything. */
export type Permission = 'public' | 'predict' | 'model' | 'metrics' | 'admin';

const GRANTS: Record<Role, ReadonlySet<Permission>> = {
  viewer: new Set(['public', 'predict']),
  engineer: new Set(['public', 'predict', 'model', 'metrics']),
  admin: new Set(['public', 'predict', 'model', 'metrics', 'admin']),
};

export function roleAllows(role: Role, p: Permission): boolean {
  return GRANTS[role].has(p);
}

export interface Principal {
  name: string;
  role: Role;
}

/** The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function keyFromHeaders(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const x = headers['x-api-key'];
  return typeof x === 'string' && x.length > 0 ? x : undefined;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Key lookup in constant time per configured key, so timing does not reveal key prefixes. */
export class KeyStore {
  private readonly entries: { digest: Buffer; principal: Principal }[];

  constructor(keys: { name: string; key: string; role: Role }[]) {
    this.entries = keys.map((k) => ({ digest: digest(k.key), principal: { name: k.name, role: k.role } }));
  }

  authenticate(key: string | undefined): Principal {
    if (key === undefined) {
      throw new CvoptError('UNAUTHENTICATED', 'this endpoint needs an API key', {
        hint: 'send it as "Authorization: Bearer <key>" or "X-API-Key: <key>"',
      });
    }
    const d = digest(key);
    let found: Principal | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.digest, d)) found = e.principal;
    if (!found) throw new CvoptError('UNAUTHENTICATED', 'the API key is not known', { hint: 'check the key; ask an admin for a valid one' });
    return found;
  }
}

export function authorize(principal: Principal, p: Permission): void {
  if (!roleAllows(principal.role, p)) {
    throw new CvoptError('FORBIDDEN', `role "${principal.role}" may not use this endpoint (needs ${p} permission)`, {
      hint: p === 'admin' ? 'use an admin key' : 'use an engineer or admin key',
    });
  }
}
