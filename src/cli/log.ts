/**
 * The command line's log: levels (error < warn < info < debug) and two
 * formats, `pretty` for a terminal and `json` (one object per line) for a log
 * collector.
 */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface Log {
  error(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
}

// A reader that goes away (a closed pipe) must not take the server down.
process.stdout.on('error', () => {});

export function createLog(level: LogLevel, format: LogFormat): Log {
  const threshold = LOG_LEVELS.indexOf(level);
  const write = (at: LogLevel, message: string, fields: Record<string, unknown> = {}) => {
    if (LOG_LEVELS.indexOf(at) > threshold) return;
    const stream = at === 'error' ? process.stderr : process.stdout;
    if (format === 'json') {
      stream.write(`${JSON.stringify({ time: new Date().toISOString(), level: at, msg: message, ...fields })}\n`);
    } else {
      stream.write(`${at === 'warn' || at === 'debug' ? `${at}: ` : ''}${message}\n`);
    }
  };
  return {
    error: (message, fields) => write('error', message, fields),
    warn: (message, fields) => write('warn', message, fields),
    info: (message, fields) => write('info', message, fields),
    debug: (message, fields) => write('debug', message, fields),
  };
}
