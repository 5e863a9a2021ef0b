/**
 * `pickup stats`: pins per status, the jobs workers hold (searching, waiting for a transfer slot,
 * transferring), the depth of the pin queue, of the dead-letter queue (jobs its consumer is
 * about to handle) and of the failed-jobs queue (jobs waiting for an operator), and how long the oldest queued
 * pin has waited, and the live workers: how many take jobs, and why the others do not (their IPFS node does not
 * answer). Reads no message (queue counts are the queues' own approximate attributes).
 */
import type { Command } from 'commander'
import { PIN_STATUSES } from '../../core/pin.ts'
import { collectStats, type Stats } from '../../core/pin-admin.ts'
import type { QueueCounts } from '../../core/ports.ts'
import { storesOf } from '../backend.ts'
import type { CliContext } from '../context.ts'
import { formatAge, toJson } from '../format.ts'
import { positiveInt } from './dlq.ts'

function queueLine(c: QueueCounts): string {
  return `${c.visible} waiting, ${c.inFlight} in flight, ${c.delayed} delayed`
}

function workersLine(w: Stats['workers']): string {
  if (w.live === 0) return 'none live (pins wait until a worker runs)'
  return `${w.live} live, ${w.ready} ready${w.ready === 0 ? ' (pins wait until one is)' : ''}`
}

export function registerStatsCommand(program: Command, cli: CliContext): void {
  program
    .command('stats')
    .description(
      'pins per status, jobs searching and transferring, depth of the pin, dead-letter and failed-jobs queues, age of the oldest queued pin, workers ready',
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
      await cli.withBackend(needs, async (backend) => {
        const stats = await backend.run(() =>
          collectStats(
            { countLimit: opts.countLimit },
            {
              pins: storesOf(backend).pins(),
              queue: storesOf(backend).queueCounter('pinQueueUrl'),
              deadLetters: storesOf(backend).queueCounter('deadLetterQueueUrl'),
              failedJobs: storesOf(backend).queueCounter('failedJobsQueueUrl'),
              workers: storesOf(backend).workers(),
              clock: cli.clock,
            },
          ),
        )
        if (opts.json) {
          cli.out(toJson(stats))
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
          `Oldest queued pin  ${
            stats.oldestQueued
              ? `${formatAge(stats.oldestQueued.ageMs)} (${stats.oldestQueued.cid}; since its last update)`
              : '(none queued)'
          }`,
          `Workers            ${workersLine(stats.workers)}`,
          ...stats.workers.notReady.map((w) => `  ${w.id} not ready: ${w.problem ?? '(no reason given)'}`),
        ]
        cli.out(`${lines.join('\n')}\n`)
      })
    })
}
