import type { Command } from 'commander';
import { action } from '../action.js';
import { emit, table } from '../output.js';
import { RemoteClient } from '../remote/client.js';
import { readPassword } from '../remote/password.js';
import { examples } from '../remote/resolve.js';

interface UserView {
  username: string;
  isAdmin: boolean;
  disabled: boolean;
  lockedUntil: string | null;
  createdAt: string;
}

/** `cvopt user create|list|disable|enable|unlock|whoami`: accounts on the server (server admins). */
export function register(program: Command): void {
  const user = examples(program.command('user').description('accounts on the cvopt server you are logged in to'), 'cvopt user create erin', 'cvopt user list', 'cvopt user unlock erin');

  const create = user
    .command('create')
    .argument('<username>')
    .description('create an account (server admins)')
    .option('--admin', 'make it a server admin')
    .option('--password-stdin', 'read its password from stdin (else CVOPT_PASSWORD, else a prompt)');
  examples(create, 'cvopt user create erin', 'echo "$PW" | cvopt user create ops --admin --password-stdin');
  action<[string]>(create, async (username, opts) => {
    const password = await readPassword(opts, `password for ${username}: `);
    const r = await RemoteClient.fromCredentials().request<{ user: UserView }>('POST', '/users', { json: { username, password, isAdmin: opts.admin === true } });
    emit(opts, r.user, (u) => `created user ${u.username}${u.isAdmin ? ' (server admin)' : ''}`);
  });

  action<[]>(examples(user.command('list').description('every account (server admins)'), 'cvopt user list', 'cvopt user list --json'), async (opts) => {
    const r = await RemoteClient.fromCredentials().request<{ users: UserView[] }>('GET', '/users');
    emit(opts, r.users, (us) => table(['user', 'server admin', 'disabled', 'locked until', 'created'], us.map((u) => [u.username, u.isAdmin ? 'yes' : 'no', u.disabled ? 'yes' : 'no', u.lockedUntil, u.createdAt])));
  });

  for (const [name, patch, says] of [
    ['disable', { disabled: true }, 'disabled (its tokens are revoked)'],
    ['enable', { disabled: false }, 'enabled'],
    ['unlock', { unlock: true }, 'unlocked'],
  ] as const) {
    action<[string]>(examples(user.command(name).argument('<username>').description(`${name} an account (server admins)`), `cvopt user ${name} erin`), async (username, opts) => {
      const r = await RemoteClient.fromCredentials().request<{ user: UserView }>('PATCH', `/users/${encodeURIComponent(username)}`, { json: patch });
      emit(opts, r.user, (u) => `${u.username} ${says}`);
    });
  }

  action<[]>(examples(user.command('whoami').description('who the saved session belongs to'), 'cvopt user whoami'), async (opts) => {
    const r = await RemoteClient.fromCredentials().request<{ user: UserView; token: { expiresAt: string; scopes: string[] } }>('GET', '/auth/me');
    emit(opts, r, (x) => `${x.user.username}${x.user.isAdmin ? ' (server admin)' : ''}; token scopes ${x.token.scopes.join(', ')}; expires ${x.token.expiresAt}`);
  });
}
