import { pino } from 'pino'
import type { Logger } from '../core/ports.ts'

/** Structured JSON logs (pino). `LOG_LEVEL` sets the level; `silent` for none. */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { service: name } })
}
