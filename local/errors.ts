/**
 * The ways `npm start` can fail that a person can put right, as named errors, and `explainStartFailure`, the
 * one place that turns a failure into the line printed instead of a stack (local/main.ts).
 */
import { ConfigError } from '../core/config.ts'
import { WorkerProcessError } from './worker-process.ts'

/** Another process holds the data directory's lock (`<data dir>/pickup.lock`). */
export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError'
  readonly dir: string
  readonly lockFile: string
  readonly holder: { pid: number; api?: string }
  constructor(dir: string, lockFile: string, holder: { pid: number; api?: string }) {
    super(`${dir} is locked by pid ${holder.pid}`)
    this.dir = dir
    this.lockFile = lockFile
    this.holder = holder
  }
}

/** The data directory cannot be created or written. */
export class DataDirUnwritableError extends Error {
  override readonly name = 'DataDirUnwritableError'
  readonly dir: string
  readonly reason: string
  constructor(dir: string, reason: string) {
    super(`cannot write ${dir}: ${reason}`)
    this.dir = dir
    this.reason = reason
  }
}

/** A table of the data directory was created by an older pickup and lacks indexes dynalite cannot add. */
export class OutdatedDataError extends Error {
  override readonly name = 'OutdatedDataError'
  readonly table: string
  readonly missingIndexes: string[]
  constructor(table: string, missingIndexes: string[]) {
    super(
      `table ${table} was created by an older pickup and lacks the index(es) ${missingIndexes.join(', ')}; ` +
        'stop pickup and delete <data dir>/services/dynamodb (pins and requests are lost, CARs are kept) to recreate it',
    )
    this.table = table
    this.missingIndexes = missingIndexes
  }
}

/** What `explainStartFailure` needs to know to say what to do. */
export interface StartContext {
  /** The HTTP API's port, as configured. */
  port: number
  /** The data directory, absolute. */
  dataDir: string
}

/** The Node error of a listen on a port in use (`EADDRINUSE`, with the port), if it is one. */
export function portInUse(err: unknown): number | undefined {
  if (!(err instanceof Error) || Reflect.get(err, 'code') !== 'EADDRINUSE') return undefined
  const port = Reflect.get(err, 'port')
  return typeof port === 'number' ? port : undefined
}

/**
 * One line saying what went wrong and what to do, for the failures a person can put right; undefined for
 * the others (bugs: their stack is worth more).
 */
export function explainStartFailure(err: unknown, ctx: StartContext): string | undefined {
  const otherDir = `PICKUP_DATA_DIR=${ctx.dataDir}-2 npm start`
  if (err instanceof ConfigError) {
    return `pickup: invalid configuration: ${err.problems.join('; ')} (see README, Configuration)`
  }
  if (err instanceof DataDirLockedError) {
    const api = err.holder.api ? `, API ${err.holder.api}` : ', still starting'
    return (
      `pickup: the data directory ${err.dir} is in use by another pickup (pid ${err.holder.pid}${api}). ` +
      `Stop it (Ctrl-C in its terminal, or kill ${err.holder.pid}), or use another directory: ${otherDir}. ` +
      `(If pid ${err.holder.pid} is not pickup, delete ${err.lockFile}.)`
    )
  }
  if (err instanceof DataDirUnwritableError) {
    return (
      `pickup: cannot write the data directory ${err.dir} (${err.reason}). ` +
      `Make it writable, or use another directory: ${otherDir}`
    )
  }
  if (err instanceof OutdatedDataError) {
    return (
      `pickup: the data directory ${ctx.dataDir} was written by an older pickup: table ${err.table} lacks the ` +
      `index(es) ${err.missingIndexes.join(', ')}, which the embedded DynamoDB cannot add. Delete ` +
      `${ctx.dataDir}/services/dynamodb to recreate the tables (pins and requests are lost, CARs are kept), ` +
      `or use another directory: ${otherDir}`
    )
  }
  if (err instanceof WorkerProcessError) {
    return `pickup: ${err.message} (its error, if it printed one, is above); LOCAL_WORKER=inline runs the worker in local mode's process`
  }
  const port = portInUse(err)
  if (port !== undefined) {
    if (port === ctx.port) {
      return (
        `pickup: port ${port} is in use (another pickup, or another program). ` +
        `Start on another port: PORT=${port + 1} npm start`
      )
    }
    return `pickup: port ${port} of an embedded service is in use by another program; start again to pick another`
  }
  return undefined
}
