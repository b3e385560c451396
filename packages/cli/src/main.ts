#!/usr/bin/env node
import { buildProgram } from './program.js';

const program = buildProgram();
program.exitOverride((err) => {
  // commander's own usage errors (unknown flag, missing argument) exit 2, like our INVALID_ARGUMENT.
  process.exit(err.exitCode === 0 ? 0 : 2);
});
await program.parseAsync(process.argv);
