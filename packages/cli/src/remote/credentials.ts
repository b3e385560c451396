import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CvoptError } from '@cvopt/core';

/** What `cvopt login` keeps: the server and a session token, in a file only its owner can read (0600). */
export interface Credentials {
  url: string;
  token: string;
  username: string;
  expiresAt: string;
  /** The project `--remote` runs in when no --project is given (`cvopt project use NAME`). */
  project?: string;
}

/** CVOPT_CONFIG_DIR, else $XDG_CONFIG_HOME/cvopt, else ~/.config/cvopt. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CVOPT_CONFIG_DIR) return env.CVOPT_CONFIG_DIR;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'cvopt');
}

export const credentialsPath = (env: NodeJS.ProcessEnv = process.env): string => join(configDir(env), 'credentials.json');

export function saveCredentials(c: Credentials, env: NodeJS.ProcessEnv = process.env): string {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = credentialsPath(env);
  writeFileSync(path, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600); // an older file keeps its mode on overwrite
  return path;
}

export function loadCredentials(env: NodeJS.ProcessEnv = process.env): Credentials {
  const path = credentialsPath(env);
  if (!existsSync(path)) throw new CvoptError('UNAUTHENTICATED', 'not logged in to a cvopt server', { hint: 'cvopt login http://HOST:8700' });
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as Credentials;
    if (typeof c.url !== 'string' || typeof c.token !== 'string') throw new Error('missing url or token');
    return c;
  } catch (e) {
    throw new CvoptError('INVALID_CONFIG', `${path} is not a cvopt credentials file: ${(e as Error).message}`, { where: { file: path }, hint: 'cvopt login again' });
  }
}

export function removeCredentials(env: NodeJS.ProcessEnv = process.env): boolean {
  const path = credentialsPath(env);
  if (!existsSync(path)) return false;
  rmSync(path);
  return true;
}

/** Remember the project `--remote` commands run in; kept in the same 0600 file as the session. */
export function saveDefaultProject(project: string, env: NodeJS.ProcessEnv = process.env): string {
  return saveCredentials({ ...loadCredentials(env), project }, env);
}
