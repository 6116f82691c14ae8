// Structured JSON logs, one object per line on stderr, with the service name and whatever
// context the caller binds (run, step, trace ids).
export type Fields = Record<string, unknown>;

export interface Logger {
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  debug(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const levels = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof levels;

export function createLogger(service: string, bound: Fields = {}): Logger {
  const min = levels[(process.env.TEMPER_LOG_LEVEL as Level) ?? 'info'] ?? levels.info;
  const write = (level: Level, msg: string, fields?: Fields) => {
    if (levels[level] < min) return;
    const entry = { time: new Date().toISOString(), level, service, msg, ...bound, ...fields };
    process.stderr.write(JSON.stringify(entry, errorReplacer) + '\n');
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (f) => createLogger(service, { ...bound, ...f }),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
}
