import type { Logger } from '../../core/ports.ts'

/** A logger that keeps its lines, so tests can read what was logged; silent otherwise. */
export function createTestLogger(lines: Array<{ level: string; msg?: string; obj: object }> = []): Logger {
  const make = (bindings: object): Logger => ({
    info: (obj, msg) => void lines.push({ level: 'info', msg, obj: { ...bindings, ...obj } }),
    warn: (obj, msg) => void lines.push({ level: 'warn', msg, obj: { ...bindings, ...obj } }),
    error: (obj, msg) => void lines.push({ level: 'error', msg, obj: { ...bindings, ...obj } }),
    debug: () => {},
    child: (more) => make({ ...bindings, ...more }),
  })
  return make({})
}
