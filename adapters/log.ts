import { pino } from 'pino'
import { describeError } from '../core/errors.ts'
import type { Logger } from '../core/ports.ts'

/**
 * How an error is logged under `err` (callers pass the error object itself): pino's serializer (type,
 * message, stack, own properties, and every `cause` in message and stack), with pickup's stable code.
 */
export function serializeError(err: unknown): object {
  const { code, message } = describeError(err)
  if (!(err instanceof Error)) return { code, message }
  return { code, ...pino.stdSerializers.err(err) }
}

/** Structured JSON logs (pino). `LOG_LEVEL` sets the level; `silent` for none. */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { service: name }, serializers: { err: serializeError } })
}
