import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { CvoptError, type Logger } from '@cvopt/core';
import { Semaphore } from '@cvopt/runtime';
import type { ServerConfig } from '../config.js';
import type { Repository, Token, TokenScope, User } from '../store/repository.js';
import { TOKEN_SCOPES } from '../store/repository.js';
import { hashPassword, verifyPassword, type ScryptCost } from './password.js';
import { formatBearer, hashSecret, newId, newSecret } from './tokens.js';

const SETUP_KEY = 'setup_token_sha256';
const USERNAME = /^[a-z0-9][a-z0-9._-]{1,39}$/;

export function checkUsername(username: string): void {
  if (!USERNAME.test(username)) {
    throw new CvoptError('INVALID_ARGUMENT', `username "${username}" is not allowed`, { where: { field: 'username' }, hint: '2–40 characters: a-z, 0-9, ".", "_", "-", starting with a letter or digit' });
  }
}

/** Users, passwords, sessions and API tokens; login throttling and lock-out. */
export class Identity {
  private readonly cost: ScryptCost;
  /** Login attempts per client address in the current minute. Bounded: cleared when it grows past 10 000 keys. */
  private readonly attempts = new Map<string, { minute: number; n: number }>();
  /** A hash of a random password, verified against when the user does not exist, so timing does not tell. */
  private dummyHash: Promise<string>;
  /**
   * scrypt runs on libuv's small thread pool, which file I/O shares: a login storm must not starve uploads and
   * job submissions, so at most `maxConcurrentHashes` hashes run at once and the rest wait their turn.
   */
  private readonly hashing: Semaphore;

  constructor(
    private readonly repo: Repository,
    private readonly config: ServerConfig,
    private readonly now: () => Date,
  ) {
    this.cost = { N: 1 << config.scryptLogN, r: 8, p: 1 };
    this.hashing = new Semaphore(config.maxConcurrentHashes);
    this.dummyHash = hashPassword(randomBytes(16).toString('hex'), this.cost);
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    await this.hashing.acquire();
    try {
      return await fn();
    } finally {
      this.hashing.release();
    }
  }

  private hash(password: string): Promise<string> {
    return this.limited(() => hashPassword(password, this.cost));
  }

  private verify(password: string, stored: string): Promise<boolean> {
    return this.limited(() => verifyPassword(password, stored));
  }

  checkPassword(password: string): void {
    if (password.length < this.config.minPasswordLength) {
      throw new CvoptError('INVALID_ARGUMENT', `the password is shorter than ${this.config.minPasswordLength} characters`, { where: { field: 'password' } });
    }
    if (password.length > 1024) throw new CvoptError('INVALID_ARGUMENT', 'the password is longer than 1024 characters', { where: { field: 'password' } });
  }

  async createUser(username: string, password: string, isAdmin: boolean): Promise<User> {
    checkUsername(username);
    this.checkPassword(password);
    return this.repo.createUser({
      id: newId('usr'),
      username,
      passwordHash: await this.hash(password),
      isAdmin,
      disabled: false,
      failedLogins: 0,
      createdAt: this.now().toISOString(),
    });
  }

  async setPassword(user: User, password: string): Promise<void> {
    this.checkPassword(password);
    await this.repo.updateUser(user.id, { passwordHash: await this.hash(password) });
    await this.repo.revokeUserTokens(user.id, this.now().toISOString());
  }

  /**
   * First start: with no users, create `admin` from CVOPT_ADMIN_PASSWORD, or store a one-time setup token and
   * return it for the entry to print. Returns undefined when users exist or the admin was created.
   */
  async bootstrap(env: { adminPassword?: string; adminUser?: string }, log: Logger): Promise<{ setupToken?: string; admin?: string }> {
    if ((await this.repo.countUsers()) > 0) return {};
    if (env.adminPassword) {
      const u = await this.createUser(env.adminUser ?? 'admin', env.adminPassword, true);
      log.info({ user: u.username }, 'created the first server admin from CVOPT_ADMIN_PASSWORD');
      return { admin: u.username };
    }
    const token = randomBytes(24).toString('base64url');
    await this.repo.setSetting(SETUP_KEY, hashSecret(token));
    return { setupToken: token };
  }

  /** Redeem the one-time setup token for the first admin account. */
  async setup(token: string, username: string, password: string): Promise<User> {
    const stored = await this.repo.getSetting(SETUP_KEY);
    const a = Buffer.from(hashSecret(token), 'hex');
    const ok = stored !== undefined && timingSafeEqual(a, Buffer.from(stored, 'hex'));
    if (!ok || (await this.repo.countUsers()) > 0) {
      throw new CvoptError('UNAUTHENTICATED', 'the setup token is wrong or was already used', { hint: 'use the token the server printed at its first start' });
    }
    const user = await this.createUser(username, password, true);
    await this.repo.setSetting(SETUP_KEY, undefined);
    return user;
  }

  private throttle(client: string): void {
    const minute = Math.floor(this.now().getTime() / 60_000);
    if (this.attempts.size > 10_000) this.attempts.clear();
    const key = createHash('sha256').update(client).digest('base64url').slice(0, 16);
    const e = this.attempts.get(key);
    if (!e || e.minute !== minute) this.attempts.set(key, { minute, n: 1 });
    else if (++e.n > this.config.loginPerMinute) {
      throw new CvoptError('RATE_LIMITED', `more than ${this.config.loginPerMinute} login attempts from this address in a minute`, {
        retryAfterS: 60 - (Math.floor(this.now().getTime() / 1000) % 60),
        hint: 'wait and retry',
      });
    }
  }

  /**
   * Password login → a session token (shown once). Failed attempts count toward the lock-out.
   *
   * An unknown user, a wrong password, a locked account and a disabled one get the same answer (status, code,
   * message, no Retry-After) after the same scrypt work, so the answer tells a caller nothing about which
   * accounts exist or are locked. Only `onRefused` (the server log and the audit entry) hears the reason.
   */
  async login(username: string, password: string, client: string, onRefused?: (reason: string) => void): Promise<{ bearer: string; token: Token; user: User }> {
    this.throttle(client);
    const refuse = (reason: string): never => {
      onRefused?.(reason);
      throw new CvoptError('UNAUTHENTICATED', 'wrong username or password', { hint: 'check both; repeated failures lock the account for a while' });
    };
    const user = await this.repo.userByName(username);
    // The KDF runs on every path, before anything is decided, so no answer comes back sooner than another.
    const matches = await this.verify(password, user?.passwordHash ?? (await this.dummyHash));
    if (!user) return refuse(`no user "${username}"`);
    const now = this.now();
    if (user.lockedUntil && Date.parse(user.lockedUntil) > now.getTime()) {
      return refuse(`account "${username}" is locked until ${user.lockedUntil} after ${this.config.lockoutAfter} failed logins`);
    }
    if (!matches || user.disabled) {
      const after = await this.repo.recordFailedLogin(user.id, this.config.lockoutAfter, new Date(now.getTime() + this.config.lockoutMinutes * 60_000).toISOString());
      const locked = after?.lockedUntil && Date.parse(after.lockedUntil) > now.getTime() ? `; the account is now locked until ${after.lockedUntil}` : '';
      return refuse(`${user.disabled ? `account "${username}" is disabled` : `wrong password for "${username}"`} (failure ${after?.failedLogins ?? '?'})${locked}`);
    }
    if (user.failedLogins > 0 || user.lockedUntil) await this.repo.updateUser(user.id, { failedLogins: 0, lockedUntil: undefined });
    const { bearer, token } = await this.issue(user, 'session', 'login', [...TOKEN_SCOPES], this.config.sessionTtlHours * 3600_000);
    return { bearer, token, user };
  }

  async createApiToken(user: User, name: string, scopes: TokenScope[], days: number): Promise<{ bearer: string; token: Token }> {
    if (days > this.config.tokenMaxDays) {
      throw new CvoptError('INVALID_ARGUMENT', `a token may live at most ${this.config.tokenMaxDays} days`, { where: { field: 'expiresInDays' } });
    }
    return this.issue(user, 'api', name, scopes, days * 86_400_000);
  }

  private async issue(user: User, kind: Token['kind'], name: string, scopes: TokenScope[], ttlMs: number): Promise<{ bearer: string; token: Token }> {
    const now = this.now();
    const secret = newSecret();
    const token = await this.repo.createToken({
      id: newId('tok'),
      userId: user.id,
      kind,
      name,
      secretHash: hashSecret(secret),
      scopes,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
    });
    return { bearer: formatBearer(token.id, secret), token };
  }
}
