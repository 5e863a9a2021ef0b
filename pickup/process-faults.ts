/**
 * Process-level fault handlers of the worker sidecar.
 *
 * - An **unhandled rejection** is logged and the process keeps running. Everything the worker holds is
 *   recoverable from outside it: a message it failed to settle comes back when its visibility timeout runs out,
 *   a pin whose lease it stops renewing is taken over, and every write is conditional. Exiting instead would
 *   throw away every other job in flight (hours-long fetches) and spend a receive of each held message. A loop
 *   that stopped because of the fault is caught by the health check (`pickup/health.ts`), which replaces the task.
 * - An **uncaught exception** is logged and the process exits with 1: it was thrown synchronously out of a
 *   callback, so some state may be half-updated, and Node does not promise that resuming is safe. The task is
 *   replaced, its messages reappear and its leases run out, so nothing is lost.
 */
import type { Logger } from '../core/ports.ts'

export interface FaultProcess {
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown
  on(event: 'uncaughtException', listener: (err: Error, origin: string) => void): unknown
  exit(code: number): never
}

export function handleProcessFaults(proc: FaultProcess, log: Logger): void {
  proc.on('unhandledRejection', (reason) => {
    log.error({ err: reason }, 'unhandled rejection: logged, the worker keeps running')
  })
  proc.on('uncaughtException', (err, origin) => {
    log.error({ err, origin }, 'uncaught exception: the worker exits')
    proc.exit(1)
  })
}
