import type { ProjectRole } from '../permissions.js';

/** What the server stores. One interface; `SqlRepository` implements it over SQLite and PostgreSQL. */

export interface User {
  id: string;
  username: string;
  passwordHash: string;
  /** A server admin manages users and may register server-side dataset paths. */
  isAdmin: boolean;
  disabled: boolean;
  failedLogins: number;
  lockedUntil?: string;
  createdAt: string;
}

export const TOKEN_SCOPES = ['read', 'write', 'predict'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

export interface Token {
  id: string;
  userId: string;
  /** A session comes from a password login; an api token is created by its user and shown once. */
  kind: 'session' | 'api';
  name: string;
  secretHash: string;
  scopes: TokenScope[];
  createdAt: string;
  expiresAt: string;
  revokedAt?: string;
}

export interface Project {
  id: string;
  name: string;
  description: string;
  createdBy: string;
  createdAt: string;
  /** What the project's prediction endpoint serves. */
  deployment?: Deployment;
}

export interface Deployment {
  /** A model resource (ONNX with its model.json) or the artifact of a succeeded package job. */
  source: { modelId: string } | { jobId: string };
  /** Directory or .onnx file the runtime loads. */
  target: string;
  setBy: string;
  setAt: string;
}

export interface Member {
  projectId: string;
  userId: string;
  username: string;
  role: ProjectRole;
  grantedBy: string;
  grantedAt: string;
}

export interface DatasetRecord {
  id: string;
  projectId: string;
  name: string;
  source: 'upload' | 'path';
  /** The dataset root on the server (where data.yaml or the class folders are). */
  path: string;
  task: 'detect' | 'classify';
  sizeBytes: number;
  /** The `cvopt dataset check` report. */
  report: unknown;
  createdBy: string;
  createdAt: string;
}

export interface ModelRecord {
  id: string;
  projectId: string;
  name: string;
  format: 'onnx' | 'pt' | 'pkl' | 'preset';
  path?: string;
  preset?: string;
  sha256?: string;
  sizeBytes: number;
  /** How a worker may load it: `safe-unpickler` for .pt/.pkl, `onnx` for ONNX, `preset` for a named architecture. */
  loader: 'safe-unpickler' | 'onnx' | 'preset';
  report: unknown;
  createdBy: string;
  createdAt: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  userId?: string;
  username?: string;
  projectId?: string;
  action: string;
  method: string;
  path: string;
  status: number;
  outcome: 'ok' | 'denied' | 'error';
  requestId: string;
  detail?: string;
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>;

export interface Repository {
  readonly dialect: 'sqlite' | 'postgres';
  migrate(): Promise<number[]>;
  close(): Promise<void>;

  countUsers(): Promise<number>;
  createUser(u: User): Promise<User>;
  userById(id: string): Promise<User | undefined>;
  userByName(username: string): Promise<User | undefined>;
  listUsers(): Promise<User[]>;
  updateUser(id: string, patch: Partial<Pick<User, 'passwordHash' | 'isAdmin' | 'disabled' | 'failedLogins' | 'lockedUntil'>>): Promise<User | undefined>;
  /** Count one failed login and lock the account when `lockAfter` is reached, in one atomic statement. */
  recordFailedLogin(id: string, lockAfter: number, lockUntil: string): Promise<User | undefined>;

  createToken(t: Token): Promise<Token>;
  tokenById(id: string): Promise<Token | undefined>;
  /** A token and its user in one round trip: what every authenticated request reads. */
  tokenWithUser(id: string): Promise<{ token: Token; user: User } | undefined>;
  listTokens(userId: string): Promise<Token[]>;
  revokeToken(id: string, at: string): Promise<boolean>;
  revokeUserTokens(userId: string, at: string): Promise<number>;

  /** Creates the project and makes its creator its admin, atomically. */
  createProject(p: Project): Promise<Project>;
  projectById(id: string): Promise<Project | undefined>;
  projectByName(name: string): Promise<Project | undefined>;
  /** Projects where the user holds a role (with the role), or every project for `undefined`. */
  listProjects(userId?: string): Promise<(Project & { role?: ProjectRole })[]>;
  /** A project and the user's role in it (undefined when none), in one round trip: what authorization reads. */
  projectAccess(projectId: string, userId: string): Promise<{ project: Project; role?: ProjectRole } | undefined>;
  setDeployment(projectId: string, d: Deployment | undefined): Promise<void>;
  /** Delete a project with its members, datasets and models (rows only: files are the caller's, after). */
  deleteProject(id: string): Promise<boolean>;

  setMember(m: Omit<Member, 'username'>): Promise<void>;
  removeMember(projectId: string, userId: string): Promise<boolean>;
  member(projectId: string, userId: string): Promise<Member | undefined>;
  listMembers(projectId: string): Promise<Member[]>;

  createDataset(d: DatasetRecord): Promise<DatasetRecord>;
  dataset(projectId: string, id: string): Promise<DatasetRecord | undefined>;
  listDatasets(projectId: string): Promise<DatasetRecord[]>;
  deleteDataset(projectId: string, id: string): Promise<boolean>;

  createModel(m: ModelRecord): Promise<ModelRecord>;
  model(projectId: string, id: string): Promise<ModelRecord | undefined>;
  listModels(projectId: string): Promise<ModelRecord[]>;
  deleteModel(projectId: string, id: string): Promise<boolean>;

  /** The id of every dataset and model of every project: what the start-up sweep keeps on disk. */
  resourceIds(): Promise<{ datasets: string[]; models: string[] }>;

  appendAudit(e: NewAuditEntry): Promise<void>;
  /** Newest first; `beforeId` pages back. */
  listAudit(filter: { projectId?: string; limit: number; beforeId?: number }): Promise<AuditEntry[]>;

  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string | undefined): Promise<void>;
}
