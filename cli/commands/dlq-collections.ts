/**
 * `pickup dlq list|show|redrive --collections`: the collection jobs' dead-letter queue, where SQS moves a
 * collection job after 5 failed deliveries, each shown beside its collection as it is now
 * (core/collections/dead-jobs.ts). Registered by ./dlq.ts, as the `--collections` side of each command.
 */
import {
  type DeadCollectionJobView,
  findDeadCollectionJob,
  listDeadCollectionJobs,
  redriveDeadCollectionJobs,
} from '../../core/collections/dead-jobs.ts'
import { type JobFailure, jobFailureJson } from '../../core/collections/model.ts'
import { type Backend, CliError, storesOf } from '../backend.ts'
import type { CliContext } from '../context.ts'
import { formatAge, formatTable, isoTime, toJson, truncate } from '../format.ts'
import { cliLogger, type RedriveAsked, runRedrive } from './dlq.ts'

export const COLLECTION_DLQ = "the collection jobs' dead-letter queue"

/** Said where a job's failure would be shown but its collection records none (or no longer exists). */
export const ERROR_NOT_RECORDED =
  "not recorded: SQS moved the job after 5 failed deliveries without noting why; the consumer's logs have " +
  'each failure ("collection job failed; it will be retried", with the collectionId and step)'

/** The collection's last job failure, as recorded by the consumer. */
export function formatJobFailure(f: JobFailure): string {
  return `${f.error} (step ${f.step}, delivery ${f.receives}, at ${isoTime(f.at)})`
}

function readContext(backend: Backend, cli: CliContext) {
  return {
    deadLetters: storesOf(backend).collectionDeadLetterQueue(),
    collections: storesOf(backend).collections(),
    clock: cli.clock,
  }
}

function viewJson(v: DeadCollectionJobView) {
  return {
    ...v,
    sent: isoTime(v.sentAt),
    ...(v.collection
      ? {
          collection: {
            ...v.collection,
            ...(v.collection.lastJobFailure
              ? { lastJobFailure: jobFailureJson(v.collection.lastJobFailure) }
              : {}),
            updatedAt: isoTime(v.collection.updated),
          },
        }
      : {}),
  }
}

function collectionState(v: DeadCollectionJobView): string {
  if (!v.job) return 'not a collection job'
  return v.collection ? v.collection.status : 'no collection'
}

export async function listCollectionDlq(
  cli: CliContext,
  opts: { limit: number; hideSeconds: number; json?: boolean },
): Promise<void> {
  await cli.withBackend(['collectionDeadLetterQueueUrl', 'collectionsTable'], async (backend) => {
    const views = await cli.interruptible((signal) =>
      backend.run(() =>
        listDeadCollectionJobs(
          { limit: opts.limit, hideSeconds: opts.hideSeconds, signal },
          readContext(backend, cli),
        ),
      ),
    )
    if (opts.json) {
      cli.out(toJson(views.map(viewJson)))
      return
    }
    if (views.length === 0) {
      cli.out(`${COLLECTION_DLQ} is empty\n`)
      return
    }
    const now = cli.clock.now()
    cli.out(
      formatTable(
        ['ID', 'COLLECTION', 'STEP', 'OWNER', 'STATUS', 'RECEIVES', 'SENT', 'LAST FAILURE'],
        views.map((v) => [
          v.id,
          v.job?.collectionId ?? truncate(v.body ?? '', 40),
          v.job?.step ?? '-',
          v.collection?.owner ?? '-',
          collectionState(v),
          String(v.receiveCount),
          `${formatAge(now - v.sentAt)} ago`,
          v.collection?.lastJobFailure ? truncate(v.collection.lastJobFailure.error, 60) : '-',
        ]),
      ),
    )
    cli.out(
      'LAST FAILURE: the last failed delivery of a job of the collection, as recorded on it (`dlq show` has it ' +
        'whole)',
    )
    if (views.some((v) => !v.errorRecorded)) cli.out(`; where "-": ${ERROR_NOT_RECORDED}`)
    cli.out('.\n')
    if (views.length === opts.limit) cli.err(`(showing the first ${opts.limit}; --limit for more)\n`)
  })
}

export async function showCollectionDlq(
  cli: CliContext,
  id: string,
  opts: { hideSeconds: number; json?: boolean },
): Promise<void> {
  await cli.withBackend(['collectionDeadLetterQueueUrl', 'collectionsTable'], async (backend) => {
    const v = await cli.interruptible((signal) =>
      backend.run(() =>
        findDeadCollectionJob(id, { hideSeconds: opts.hideSeconds, signal }, readContext(backend, cli)),
      ),
    )
    if (!v) {
      throw new CliError(
        `no message ${id} in ${COLLECTION_DLQ} (\`pickup dlq list --collections\` shows the ids of those there)`,
      )
    }
    if (opts.json) {
      cli.out(toJson(viewJson(v)))
      return
    }
    const rows: Array<[string, string]> = [['Message', v.id]]
    if (v.job) rows.push(['Collection', v.job.collectionId], ['Step', v.job.step])
    else rows.push(['Body', `${v.body ?? ''} (not a collection job: nothing can process it; purge it)`])
    rows.push(
      ['Sent', `${isoTime(v.sentAt)} (${formatAge(v.ageMs)} ago)`],
      ['Receives', `${v.receiveCount} (deliveries on the jobs queue, and reads of this queue since)`],
      [
        'Error',
        v.collection?.lastJobFailure ? formatJobFailure(v.collection.lastJobFailure) : ERROR_NOT_RECORDED,
      ],
    )
    const c = v.collection
    if (c) {
      rows.push(
        ['Owner', c.owner],
        ['Contract', `${c.chainId}:${c.address}${c.name === undefined ? '' : ` (${c.name})`}`],
        ['Status', `${c.status}, updated ${isoTime(c.updated)}`],
      )
      if (c.error !== undefined) rows.push(['Collection error', c.error])
    } else if (v.job) {
      rows.push(['Status', 'no collection: it was deleted (redrive skips the job; purge it)'])
    }
    cli.out(`${rows.map(([k, val]) => `${k.padEnd(10)} ${val}`).join('\n')}\n`)
  })
}

export async function redriveCollectionDlq(
  cli: CliContext,
  ids: string[],
  opts: RedriveAsked,
): Promise<void> {
  await cli.withBackend(
    ['collectionDeadLetterQueueUrl', 'collectionsTable', 'collectionJobsQueueUrl'],
    async (backend) => {
      const ctx = {
        ...readContext(backend, cli),
        jobs: storesOf(backend).collectionJobs(),
        log: cliLogger(cli.err),
      }
      const ran = await runRedrive(
        cli,
        backend,
        { ids, opts, deadLetters: ctx.deadLetters },
        { target: 'the collection jobs queue', source: COLLECTION_DLQ },
        (options) => redriveDeadCollectionJobs(options, ctx),
      )
      if (!ran) return
      const { result } = ran
      const lines = [
        `Sent ${result.redriven} message${result.redriven === 1 ? '' : 's'} back to the collection jobs queue.`,
      ]
      if (result.notDeleted > 0) {
        lines.push(
          `${result.notDeleted} of them could not be deleted from ${COLLECTION_DLQ}: they are on both queues ` +
            '(harmless: the steps are re-entrant; a later redrive sends them again).',
        )
      }
      const s = result.skipped
      if (s.noCollection > 0)
        lines.push(`Left ${s.noCollection} whose collection no longer exists: purge them.`)
      if (s.notCollectionJob > 0)
        lines.push(`Left ${s.notCollectionJob} that are not collection jobs: purge them.`)
      lines.push(...ran.tail)
      cli.out(`${lines.join('\n')}\n`)
    },
  )
}
