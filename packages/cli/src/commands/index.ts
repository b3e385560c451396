import type { Command } from 'commander';

/** Every command registers itself from its own file; this list is the only place that knows them all. */
export const COMMANDS: ((program: Command) => void)[] = [];
