/**
 * The worker run by a parent process over an IPC channel: local mode (`npm start`) runs `pickup/main.ts` as a
 * process of its own beside its embedded services, as ECS runs the task beside AWS's. The worker tells its
 * parent when it becomes ready or stops being ready, and where its IPFS node listens (local mode's health
 * endpoint, readiness lines, cluster peer id and delegates come from it), and sends it its metric lines
 * (EMF, which in ECS go to stdout for CloudWatch) for local mode's metrics file, which has one writer. Its log
 * lines go to the stdout it shares with local mode.
 */
import type { WorkerStatus } from './worker.ts'

export interface WorkerReport {
  type: 'worker-status'
  status: WorkerStatus
  /** The IPFS node's addresses, as its last check found them (none while it does not answer). */
  multiaddrs: string[]
  /** The embedded Helia node's peer id (beside kubo the parent knows kubo's). */
  peerId?: string
}

export interface MetricLine {
  type: 'metric-line'
  /** One EMF line (adapters/metrics/emf.ts). */
  line: string
}

export type WorkerMessage = WorkerReport | MetricLine

/** Whether this process was started by a parent with an IPC channel open. */
export function runByParent(): boolean {
  return typeof process.send === 'function' && process.connected
}

export function reportToParent(message: WorkerMessage): void {
  if (runByParent()) process.send?.(message)
}

/** The worker's message, if `message` is one (anything else on the channel is ignored). */
export function workerMessage(message: unknown): WorkerMessage | undefined {
  if (typeof message !== 'object' || message === null) return undefined
  const m = message as Partial<WorkerReport> & Partial<MetricLine>
  if (m.type === 'worker-status' && typeof m.status?.ready === 'boolean' && Array.isArray(m.multiaddrs)) {
    return m as WorkerReport
  }
  if (m.type === 'metric-line' && typeof m.line === 'string') return m as MetricLine
  return undefined
}
