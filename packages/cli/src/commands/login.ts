import type { Command } from 'commander';
import { CvoptError } from '@cvopt/core';
import { action } from '../action.js';
import { emit } from '../output.js';
import { RemoteClient } from '../remote/client.js';
import { loadCredentials, type Credentials, removeCredentials, saveCredentials } from '../remote/credentials.js';
import { readPassword } from '../remote/password.js';
import { examples } from '../remote/resolve.js';

/** `cvopt login URL` / `cvopt logout`: a session on a cvopt server, kept in a 0600 file. */
export function register(program: Command): void {
  const login = program
    .command('login')
    .description('sign in to a cvopt server; the session token is kept in ~/.config/cvopt/credentials.json (0600; CVOPT_CONFIG_DIR or XDG_CONFIG_HOME move it)')
    .argument('<url>', 'the server, e.g. http://127.0.0.1:8700')
    .requiredOption('--username <name>', 'your account')
    .option('--password-stdin', 'read the password from stdin (else CVOPT_PASSWORD, else a prompt)');
  examples(login, 'cvopt login http://127.0.0.1:8700 --username erin', 'pass show cvopt | cvopt login https://cvopt.example.com --username erin --password-stdin');
  action<[string]>(login, async (url, opts) => {
    if (!/^https?:\/\//.test(url)) throw new CvoptError('INVALID_ARGUMENT', `"${url}" is not an http(s) URL`, { where: { field: 'url' }, hint: 'cvopt login http://HOST:8700 --username NAME' });
    const password = await readPassword(opts);
    const r = await new RemoteClient(url).request<{ token: string; expiresAt: string; user: { username: string; isAdmin: boolean } }>('POST', '/auth/login', {
      json: { username: opts.username, password },
    });
    // A new session on the same server keeps the default project of `cvopt project use`.
    let before: Credentials | undefined;
    try {
      before = loadCredentials();
    } catch {
      /* not logged in, or a damaged file that this login replaces */
    }
    const base = url.replace(/\/$/, '');
    const file = saveCredentials({ url: base, token: r.token, username: r.user.username, expiresAt: r.expiresAt, ...(before?.url === base && before.project ? { project: before.project } : {}) });
    emit(opts, { url, username: r.user.username, isAdmin: r.user.isAdmin, expiresAt: r.expiresAt, credentials: file }, (x) => `logged in to ${x.url} as ${x.username}${x.isAdmin ? ' (server admin)' : ''}; session until ${x.expiresAt}`);
  });

  const logout = examples(program.command('logout').description('end the session (the server revokes the token) and forget it'), 'cvopt logout');
  action<[]>(logout, async (opts) => {
    const c = loadCredentials();
    await new RemoteClient(c.url, c.token).request('POST', '/auth/logout').catch((e: CvoptError) => {
      if (e.code !== 'UNAUTHENTICATED') throw e; // an expired session is already over
    });
    removeCredentials();
    emit(opts, { url: c.url, username: c.username }, (x) => `logged out of ${x.url}`);
  });
}
