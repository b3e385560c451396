import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CvoptError } from '@cvopt/core';
import { action } from '../action.js';
import { emit, table } from '../output.js';
import { RemoteClient } from '../remote/client.js';
import { saveDefaultProject } from '../remote/credentials.js';
import { examples, localFile, projectId, resourceId } from '../remote/resolve.js';

interface ProjectView {
  id: string;
  name: string;
  description: string;
  role?: string;
  deployment: { target: string; source: unknown } | null;
}

/** `cvopt project …` and `cvopt grant`: projects, roles and a project's datasets, models and deployment. */
export function register(program: Command): void {
  const project = examples(
    program.command('project').description('projects on the cvopt server: create, list, members, datasets, models, deployment, predict'),
    'cvopt project create shapes',
    'cvopt project use shapes',
    'cvopt project upload-dataset shapes shapes shapes.tar.gz',
    'cvopt project predict shapes photo.jpg',
  );
  const client = () => RemoteClient.fromCredentials();

  action<[string]>(examples(project.command('create').argument('<name>').description('create a project; you become its admin').option('--description <text>', 'what it is for', ''), 'cvopt project create shapes --description "shape detector"'), async (name, opts) => {
    const r = await client().request<{ project: ProjectView }>('POST', '/projects', { json: { name, description: opts.description } });
    emit(opts, r.project, (p) => `created project ${p.name} (${p.id}); you are its admin`);
  });

  action<[]>(examples(project.command('list').description('projects you hold a role in'), 'cvopt project list'), async (opts) => {
    const r = await client().request<{ projects: ProjectView[] }>('GET', '/projects');
    emit(opts, r.projects, (ps) => table(['project', 'id', 'your role', 'deployed'], ps.map((p) => [p.name, p.id, p.role, p.deployment ? 'yes' : 'no'])));
  });

  action<[string]>(
    examples(project.command('use').argument('<project>').description('the project `--remote` commands run in when no --project is given (kept with your session, 0600)'), 'cvopt project use shapes'),
    async (p, opts) => {
      const c = client();
      const id = await projectId(c, p);
      const file = saveDefaultProject(p);
      emit(opts, { project: p, id, credentials: file }, (r) => `--remote commands now run in project ${r.project} (${r.id}); --project overrides it`);
    },
  );

  action<[string]>(examples(project.command('members').argument('<project>').description('members and roles'), 'cvopt project members shapes'), async (p, opts) => {
    const c = client();
    const r = await c.request<{ members: { username: string; role: string; grantedAt: string }[] }>('GET', `/projects/${await projectId(c, p)}/members`);
    emit(opts, r.members, (ms) => table(['user', 'role', 'granted'], ms.map((m) => [m.username, m.role, m.grantedAt])));
  });

  action<[string, string, string]>(
    examples(
      project.command('upload-dataset').argument('<project>').argument('<name>').argument('<archive>', 'a .zip or .tar.gz of a YOLO dataset').option('--task <task>', 'detect or classify (default: guessed)'),
      'tar czf shapes.tar.gz shapes && cvopt project upload-dataset shapes shapes shapes.tar.gz',
    ),
    async (p, name, file, opts) => {
      const c = client();
      const qs = new URLSearchParams({ name, ...(typeof opts.task === 'string' ? { task: opts.task } : {}) });
      const r = await c.request<{ dataset: { id: string; name: string; images: number; task: string; warnings: number } }>('POST', `/projects/${await projectId(c, p)}/datasets?${qs}`, {
        body: localFile(file, 'archive'),
        type: 'application/octet-stream',
      });
      emit(opts, r.dataset, (d) => `uploaded dataset ${d.name} (${d.id}): ${d.task}, ${d.images} images, ${d.warnings} warnings`);
    },
  );

  action<[string, string, string]>(
    examples(
      project.command('upload-model').argument('<project>').argument('<name>').argument('<file>', '.onnx, or a PyTorch .pt / .pkl (the type is read from the content)'),
      'cvopt project upload-model shapes v8n model.onnx',
      'cvopt project upload-model shapes mine best.pt',
    ),
    async (p, name, file, opts) => {
      const c = client();
      const r = await c.request<{ model: { id: string; name: string; format: string; loader: string } }>('POST', `/projects/${await projectId(c, p)}/models?name=${encodeURIComponent(name)}`, {
        body: localFile(file, 'file'),
      });
      emit(opts, r.model, (m) => `uploaded model ${m.name} (${m.id}): ${m.format}, loaded by ${m.loader}`);
    },
  );

  action<[string, string, string]>(examples(project.command('add-preset').argument('<project>').argument('<name>').argument('<preset>', 'yolov8p|n|s|m|l|x[-cls]'), 'cvopt project add-preset shapes base yolov8n'), async (p, name, preset, opts) => {
    const c = client();
    const r = await c.request<{ model: { id: string; name: string } }>('POST', `/projects/${await projectId(c, p)}/models/preset`, { json: { name, preset } });
    emit(opts, r.model, (m) => `added preset ${preset} as model ${m.name} (${m.id})`);
  });

  action<[string]>(
    examples(
      project
        .command('deploy')
        .argument('<project>')
        .description("choose what the project's prediction endpoint serves")
        .option('--model <name|id>', 'an ONNX model of the project')
        .option('--job <id>', 'a succeeded package (or export) job'),
      'cvopt project deploy shapes --model v8n',
      'cvopt project deploy shapes --job 857f2391-c7d3-4667-b8e3-c15459d95c27',
    ),
    async (p, opts) => {
      const c = client();
      const pid = await projectId(c, p);
      if ((typeof opts.model === 'string') === (typeof opts.job === 'string')) throw new CvoptError('INVALID_ARGUMENT', 'give exactly one of --model or --job', { where: { field: '--model' } });
      const body = typeof opts.model === 'string' ? { modelId: await resourceId(c, pid, 'models', opts.model) } : { jobId: String(opts.job) };
      const r = await c.request<{ deployment: { target: string } }>('PUT', `/projects/${pid}/deployment`, { json: body });
      emit(opts, r.deployment, () => `project ${p} now serves ${typeof opts.model === 'string' ? `model ${opts.model}` : `job ${opts.job}`}`);
    },
  );

  action<[string, string]>(examples(project.command('predict').argument('<project>').argument('<image>', 'JPEG, PNG, WebP or BMP').option('--save-json <file>', 'write the answer there too'), 'cvopt project predict shapes photo.jpg --save-json out.json'), async (p, image, opts) => {
    const c = client();
    const ext = image.toLowerCase().split('.').pop();
    const type = ext === 'png' ? 'image/png' : ext === 'webp' ? 'image/webp' : ext === 'bmp' ? 'image/bmp' : 'image/jpeg';
    const r = await c.request<{ detections?: { className?: string; classId?: number; score: number; box: number[] }[] }>('POST', `/projects/${await projectId(c, p)}/predict`, {
      body: localFile(image, 'image'),
      type,
    });
    if (typeof opts.saveJson === 'string') writeFileSync(opts.saveJson, JSON.stringify(r, null, 2));
    emit(opts, r, (x) =>
      x.detections ? table(['class', 'score', 'box (x1 y1 x2 y2)'], x.detections.map((d) => [d.className ?? String(d.classId), d.score, d.box.map((v) => Math.round(v)).join(' ')])) : JSON.stringify(x, null, 2),
    );
  });

  action<[string]>(examples(project.command('audit').argument('<project>').description("the project's audit log (project admins)").option('--limit <n>', 'entries', '50'), 'cvopt project audit shapes --limit 20'), async (p, opts) => {
    const c = client();
    const r = await c.request<{ entries: { at: string; username?: string; action: string; method: string; path: string; status: number; outcome: string }[] }>(
      'GET',
      `/projects/${await projectId(c, p)}/audit?limit=${encodeURIComponent(String(opts.limit))}`,
    );
    emit(opts, r.entries, (es) => table(['at', 'user', 'action', 'request', 'status', 'outcome'], es.map((e) => [e.at, e.username, e.action, `${e.method} ${e.path}`, e.status, e.outcome])));
  });

  const grant = program
    .command('grant')
    .description("give USER a role in PROJECT: admin (train, tune, bench, package, members), engineer (inference, metrics, reports, configurations) or viewer (prediction only)")
    .argument('<project>')
    .argument('<user>')
    .argument('<role>', 'admin, engineer or viewer')
    .option('--revoke', "remove the user's role instead");
  examples(grant, 'cvopt grant shapes erin engineer', 'cvopt grant shapes vera viewer', 'cvopt grant shapes vera viewer --revoke');
  action<[string, string, string]>(grant, async (p, username, role, opts) => {
    const c = client();
    const pid = await projectId(c, p);
    if (opts.revoke) {
      await c.request('DELETE', `/projects/${pid}/members/${encodeURIComponent(username)}`);
      emit(opts, { project: p, username, revoked: true }, () => `removed ${username} from ${p}`);
      return;
    }
    const r = await c.request<{ project: string; username: string; role: string }>('PUT', `/projects/${pid}/members/${encodeURIComponent(username)}`, { json: { role } });
    emit(opts, r, (x) => `${x.username} is ${x.role} in ${x.project}`);
  });
}
