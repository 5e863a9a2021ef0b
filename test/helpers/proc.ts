/** What Linux's /proc says of the processes a test or a benchmark started. */
import { readFileSync } from 'node:fs'

/** The pids of a process's children, from /proc/<pid>/task/<pid>/children; none where there is no /proc. */
export function childPids(pid: number | undefined): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}
