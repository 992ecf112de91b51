// The process logger: structured JSON lines on stdout (pino), level from LOCKSTEP_LOG_LEVEL.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(bindings: Record<string, string> = {}): Logger {
  return pino({ level: process.env.LOCKSTEP_LOG_LEVEL ?? 'info', base: { pid: process.pid, ...bindings } });
}
