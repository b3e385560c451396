import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout belongs to command output and the worker protocol).
 * Level from CVOPT_LOG_LEVEL, default "info"; "silent" turns logging off.
 */
export function createLogger(name: string, opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? process.env.CVOPT_LOG_LEVEL ?? 'info';
  return pino({ name, level, base: { name }, ...opts }, pino.destination({ fd: 2, sync: false }));
}
