/**
 * The worker run by a parent process over an IPC channel: local mode (`npm start`) runs `pickup/main.ts` as a
 * process of its own beside its embedded services, as ECS runs the task beside AWS's. The worker tells its
 * parent when it becomes ready or stops being ready, and where its IPFS node listens (local mode's health
 * endpoint, readiness lines, cluster peer id and delegates come from it); its logs and metric lines go to
 * stdout as in ECS.
 */
import type { WorkerStatus } from './worker.ts'

export interface WorkerReport {
  type: 'worker-status'
  status: WorkerStatus
  /** The IPFS node's addresses, as announced (none while it does not answer). */
  multiaddrs: string[]
  /** The embedded Helia node's peer id (beside kubo the parent knows kubo's). */
  peerId?: string
}

/** Whether this process was started by a parent with an IPC channel open. */
export function runByParent(): boolean {
  return typeof process.send === 'function' && process.connected
}

export function reportToParent(report: WorkerReport): void {
  if (runByParent()) process.send?.(report)
}

export function isWorkerReport(message: unknown): message is WorkerReport {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'worker-status' &&
    typeof (message as { status?: { ready?: unknown } }).status?.ready === 'boolean'
  )
}
