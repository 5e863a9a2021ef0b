/** What Linux's /proc says of a process the benchmarks started. */
import { readFileSync } from 'node:fs'
import { childPids } from '../../test/helpers/proc.ts'

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: 100 on Linux). */
const CLK_TCK = 100

/**
 * CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; NaN where there is no
 * /proc or no such process. Unlike wall time, it does not follow the machine's load much.
 */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // After the command: state is field 3, utime 14 and stime 15 (1-based), so indexes 11 and 12 here.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  } catch {
    return Number.NaN
  }
}

/** CPU seconds of a process and of its children alive now (local mode and its worker's process). */
export function treeCpuSeconds(pid: number | undefined): number {
  return childPids(pid).reduce((sum, child) => sum + cpuSeconds(child), cpuSeconds(pid))
}

/** Resident memory of a process now, in bytes, from /proc/<pid>/status (VmRSS); NaN where there is none. */
export function rssBytes(pid: number | undefined): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB$/m)
    return m ? Number(m[1]) * 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}
