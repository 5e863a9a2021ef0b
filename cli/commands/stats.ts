/**
 * `pickup stats`: pins per status, the jobs workers hold (searching, waiting for a transfer slot,
 * transferring), the depth of the pin queue, of the dead-letter queue (jobs its consumer is
 * about to handle) and of the failed-jobs queue (jobs waiting for an operator), and how long the oldest queued
 * pin has waited, and the live workers: how many take jobs, and why the others do not (their IPFS node does not
 * answer), and where collections are configured the depth of the collection jobs' queue and of its dead-letter
 * queue (`pickup dlq --collections`). Reads no message (queue counts are the queues' own approximate
 * attributes).
 * In local mode also the last hour's figures from the metric lines it keeps (core/metrics-summary.ts): pins
 * and bytes stored, time to pinned, attempts failed by reason, search and transfer times, invalid CARs,
 * requests and 4xx answers; in AWS those are on the CloudWatch dashboard.
 */
import type { Command } from 'commander'
import { readMetricsFile } from '../../adapters/metrics/file.ts'
import { type MetricsSummary, type Percentiles, summarizeMetrics } from '../../core/metrics-summary.ts'
import { PIN_STATUSES } from '../../core/pin.ts'
import { collectStats, type Stats } from '../../core/pin-admin.ts'
import type { QueueCounts } from '../../core/ports.ts'
import { storesOf } from '../backend.ts'
import type { CliContext } from '../context.ts'
import { formatAge, formatBytes, toJson } from '../format.ts'
import { positiveInt } from './dlq.ts'

function queueLine(c: QueueCounts): string {
  return `${c.visible} waiting, ${c.inFlight} in flight, ${c.delayed} delayed`
}

const HOUR_MS = 60 * 60 * 1000

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const percentilesText = (p: Percentiles | undefined) =>
  p ? `p50 ${seconds(p.p50)}, p90 ${seconds(p.p90)}, p99 ${seconds(p.p99)}` : '(none)'
const countsText = (entries: ReadonlyArray<readonly [string, number]>) =>
  entries.length === 0 ? 'none' : entries.map(([k, n]) => `${k} ${n}`).join(', ')

/** The last hour's figures, as the dashboard shows them first. */
function lastHourLines(s: MetricsSummary): string[] {
  const failed = s.jobs.failed > 0 ? `, ${s.jobs.failed} failed (${countsText(s.jobs.failedByReason)})` : ''
  const rate =
    s.fetchBytesPerSecondP50 === undefined
      ? ''
      : `; fetch p50 ${(s.fetchBytesPerSecondP50 / 1024 / 1024).toFixed(1)} MiB/s`
  return [
    'Last hour (the metric lines local mode keeps)',
    `  Pins stored        ${s.pinsStored}${s.pinsStored > 0 ? `, ${formatBytes(s.bytesStored)}` : ''}`,
    `  Time to pinned     ${percentilesText(s.timeToPinnedMs)} (from the first request)`,
    `  Fetch attempts     ${s.jobs.started} started, ${s.jobs.finished} uploaded${failed}`,
    `  Searching          ${percentilesText(s.searchMs)} until the first block`,
    `  Transferring       ${percentilesText(s.transferMs)}${rate}`,
    `  Invalid CARs       ${countsText(s.invalidCarsByFault)}`,
    `  Requests accepted  ${countsText(Object.entries(s.requestsAccepted))}`,
    `  4xx answers        ${countsText(s.clientErrorsByReason)}`,
  ]
}

function workersLine(w: Stats['workers']): string {
  if (w.live === 0) return 'none live (pins wait until a worker runs)'
  return `${w.live} live, ${w.ready} ready${w.ready === 0 ? ' (pins wait until one is)' : ''}`
}

export function registerStatsCommand(program: Command, cli: CliContext): void {
  program
    .command('stats')
    .description(
      'pins per status, jobs searching and transferring, depth of the pin, dead-letter, failed-jobs and collection jobs queues, age of the oldest queued pin, workers ready',
    )
    .option(
      '--count-limit <n>',
      'count at most this many pins per status (a count reads every item)',
      positiveInt,
      100_000,
    )
    .option('--json', 'print JSON')
    .action(async (opts: { countLimit: number; json?: boolean }) => {
      const needs = [
        'pinsTable',
        'pinQueueUrl',
        'deadLetterQueueUrl',
        'failedJobsQueueUrl',
        'workersTable',
      ] as const
      // Collections are optional: an operator may not have set COLLECTION_* for the CLI.
      const collectionQueues = ['collectionJobsQueueUrl', 'collectionDeadLetterQueueUrl'] as const
      await cli.withBackend(
        needs,
        async (backend) => {
          const stores = storesOf(backend)
          const counts = (q: Parameters<typeof stores.queueCounter>[0]) => stores.queueCounter(q).counts()
          const [stats, collections] = await backend.run(() =>
            Promise.all([
              collectStats(
                { countLimit: opts.countLimit },
                {
                  pins: stores.pins(),
                  queue: stores.queueCounter('pinQueueUrl'),
                  deadLetters: stores.queueCounter('deadLetterQueueUrl'),
                  failedJobs: stores.queueCounter('failedJobsQueueUrl'),
                  workers: stores.workers(),
                  clock: cli.clock,
                },
              ),
              collectionQueues.every((q) => backend.has(q))
                ? Promise.all([
                    counts('collectionJobsQueueUrl'),
                    counts('collectionDeadLetterQueueUrl'),
                  ]).then(([jobs, deadLetters]) => ({ jobs, deadLetters }))
                : undefined,
            ]),
          )
          // The last hour's figures: local mode keeps its metric lines; in AWS they are CloudWatch's.
          const since = cli.clock.now() - HOUR_MS
          const lastHour = backend.metricsFile
            ? summarizeMetrics(readMetricsFile(backend.metricsFile, since), since)
            : undefined
          if (opts.json) {
            cli.out(
              toJson({
                ...stats,
                ...(collections ? { collections } : {}),
                ...(lastHour ? { lastHour } : {}),
              }),
            )
            return
          }
          const count = (n: number) => (n >= stats.countLimit ? `>= ${n}` : String(n))
          const lines = [
            'Pins',
            ...PIN_STATUSES.map((s) => `  ${s.padEnd(8)} ${count(stats.pins[s])}`),
            `Jobs               ${stats.jobs.searching} searching, ${stats.jobs.waiting} waiting for a transfer slot, ${stats.jobs.transferring} transferring`,
            `Pin queue          ${queueLine(stats.queue)}`,
            `Dead-letter queue  ${queueLine(stats.deadLetters)}`,
            `Failed jobs        ${queueLine(stats.failedJobs)} (pickup dlq list)`,
            collections
              ? `Collection jobs    ${queueLine(collections.jobs)}; dead-lettered: ${queueLine(collections.deadLetters)} (pickup dlq list --collections)`
              : `Collection jobs    (not configured here: ${backend.kind === 'aws' ? 'set COLLECTION_JOBS_QUEUE_URL and COLLECTION_DEAD_LETTER_QUEUE_URL, or pass --outputs' : "local mode's endpoints.json names no collection queues; restart local mode"})`,
            `Oldest queued pin  ${
              stats.oldestQueued
                ? `${formatAge(stats.oldestQueued.ageMs)} (${stats.oldestQueued.cid}; since its last update)`
                : '(none queued)'
            }`,
            `Workers            ${workersLine(stats.workers)}`,
            ...stats.workers.notReady.map((w) => `  ${w.id} not ready: ${w.problem ?? '(no reason given)'}`),
            ...(lastHour
              ? lastHourLines(lastHour)
              : [
                  backend.kind === 'aws'
                    ? 'Last hour          on the CloudWatch dashboard <stage>-pickup (time to pinned, failures by reason, bytes stored)'
                    : 'Last hour          (no metric lines: this local mode predates them; restart it with `npm start`)',
                ]),
          ]
          cli.out(`${lines.join('\n')}\n`)
        },
        { optional: collectionQueues },
      )
    })
}
