/**
 * What each command group under ./commands is given by the command line (./main.ts builds it): output, a
 * clock, and the backend. Its own module, so that the commands and main.ts do not import each other.
 */
import type { Clock } from '../core/ports.ts'
import type { Backend, ResourceName } from './backend.ts'

/** What commands get: output, a clock, and the backend (resolved from the global options when used). */
export interface CliContext {
  out: (text: string) => void
  err: (text: string) => void
  clock: Clock
  tty: { stdin: boolean; stdout: boolean; stderr: boolean }
  prompt?: (question: string) => Promise<string>
  binaryOut?: NodeJS.WritableStream
  /** Resolves the backend with the resources the work uses (all missing settings are reported at once). */
  /**
   * Runs work against the backend, which must have `needs`; `optional` resources are there when configured
   * (Backend.has tells).
   */
  withBackend<T>(
    needs: readonly ResourceName[],
    work: (backend: Backend) => Promise<T>,
    opts?: { optional?: readonly ResourceName[] },
  ): Promise<T>
  /** Runs long work with a signal aborted on Ctrl-C. */
  interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T>
  setExitCode(code: number): void
}
