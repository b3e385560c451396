import type { Command } from 'commander';
import { register as registerDataset } from './dataset.js';
import { register as registerCheck } from './check.js';
import { register as registerQuantize } from './quantize.js';
import { register as registerDoctor } from './doctor.js';
import { register as registerEval } from './eval.js';
import { register as registerTune } from './tune.js';
import { register as registerServe } from './serve.js';
import { register as registerTrain } from './train.js';
import { register as registerExport } from './export.js';
import { register as registerBench } from './bench.js';
import { register as registerSelect } from './select.js';
import { register as registerQuickstart } from './quickstart.js';
import { register as registerTui } from './tui.js';
import { register as registerCompletion } from './completion.js';
import { register as registerWorker } from './worker.js';
import { register as registerServer } from './server.js';
import { register as registerLogin } from './login.js';
import { register as registerUser } from './user.js';
import { register as registerProject } from './project.js';
import { register as registerJobs } from './jobs.js';
import { register as registerPackage } from './package.js';
import { register as registerManifest } from './manifest.js';
import { register as registerPredict } from './predict.js';
import { register as registerTrack } from './track.js';
import { register as registerEvalTrack } from './eval-track.js';

/** Every command registers itself from its own file; this list is the only place that knows them all. */
export const COMMANDS: ((program: Command) => void)[] = [registerCheck, registerQuantize, registerDataset, registerDoctor, registerEval, registerTune, registerServe, registerTrain, registerExport, registerBench, registerSelect, registerPackage, registerManifest, registerQuickstart, registerTui, registerCompletion, registerWorker, registerServer, registerLogin, registerUser, registerProject, registerJobs, registerPredict, registerTrack, registerEvalTrack];
