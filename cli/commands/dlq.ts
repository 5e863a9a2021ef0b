/**
 * `pickup dlq list|show|redrive|purge`: the failed-jobs queue, where the dead-letter consumer forwards the jobs
 * it gave up on (received MAX_ATTEMPTS times; their pins marked failed), each shown with the reason, receives
 * and time recorded then, beside its pin's current state. Named `dlq`, what operators look for. Reading
 * receives: see core/dead-letters.ts. With `--collections`, each works on the collection jobs' dead-letter
 * queue instead (./dlq-collections.ts).
 */
import { type Command, InvalidArgumentError, Option } from 'commander'
import {
  DEFAULT_HIDE_SECONDS,
  type DeadLetterView,
  findDeadLetter,
  listDeadLetters,
  purgeDeadLetters,
  type RedriveOptions,
  redriveDeadLetters,
} from '../../core/dead-letters.ts'
import type { DeadLetterQueue, Logger } from '../../core/ports.ts'
import { type Backend, CliError, storesOf } from '../backend.ts'
import type { CliContext } from '../context.ts'
import { formatAge, formatTable, isoTime, toJson, truncate } from '../format.ts'
import { createProgress } from '../progress.ts'
import {
  COLLECTION_DLQ,
  listCollectionDlq,
  redriveCollectionDlq,
  showCollectionDlq,
} from './dlq-collections.ts'

export function positiveInt(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('not a positive integer')
  return n
}

function hideOption() {
  return new Option(
    '--hide-seconds <s>',
    'how long messages being read stay hidden from other readers if this command dies',
  )
    .argParser(positiveInt)
    .default(DEFAULT_HIDE_SECONDS)
}

const COLLECTIONS_FLAG = [
  '--collections',
  "the collection jobs' dead-letter queue (jobs that failed 5 deliveries) instead of the failed-jobs queue",
] as const

/** Logs of core functions, for a command line: warnings and errors to stderr as one line each. */
export function cliLogger(err: (text: string) => void): Logger {
  const line = (level: string) => (obj: object, msg?: string) => {
    const fields = Object.entries(obj)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ')
    err(`${level}: ${msg ?? ''}${fields ? ` (${fields})` : ''}\n`)
  }
  const logger: Logger = {
    info: () => {},
    debug: () => {},
    warn: line('warning'),
    error: line('error'),
    child: () => logger,
  }
  return logger
}

/** What `dlq redrive` was asked: the ids, or --all, and its options. */
export interface RedriveAsked {
  all?: boolean
  limit?: number
  hideSeconds: number
  json?: boolean
}

/**
 * Runs a redrive as both queues' commands do: a progress line on stderr (messages looked at, of those in the
 * queue when it started), Ctrl-C stopping it between messages, and the exit code: 130 when interrupted, 1
 * when some named message was not found or could not be sent. With --json it prints the outcome and answers
 * nothing; otherwise it answers the outcome, for the caller's lines, and the lines both queues end with.
 */
export async function runRedrive<R extends { notFound: string[]; skipped: { sendFailed: number } }>(
  cli: CliContext,
  backend: Backend,
  asked: { ids: string[]; opts: RedriveAsked; deadLetters: DeadLetterQueue },
  names: { target: string; source: string },
  redrive: (options: RedriveOptions) => Promise<R>,
): Promise<{ result: R; tail: string[] } | undefined> {
  const { ids, opts } = asked
  const progress = createProgress({
    label: 'redrive',
    total: (await backend.run(() => asked.deadLetters.counts())).visible,
    write: cli.err,
    tty: cli.tty.stderr,
  })
  let interrupted = false
  const result = await cli.interruptible(async (signal) => {
    try {
      return await backend.run(() =>
        redrive({
          ...(opts.all ? {} : { ids }),
          ...(opts.limit === undefined ? {} : { limit: opts.limit }),
          hideSeconds: opts.hideSeconds,
          signal,
          onProgress: (p) => progress.update(p.examined),
        }),
      )
    } finally {
      interrupted = signal.aborted
      progress.finish()
    }
  })
  if (interrupted) cli.setExitCode(130)
  else if (result.notFound.length > 0 || result.skipped.sendFailed > 0) cli.setExitCode(1)
  if (opts.json) {
    cli.out(toJson({ ...result, interrupted }))
    return undefined
  }
  const tail: string[] = []
  const failed = result.skipped.sendFailed
  if (failed > 0) tail.push(`Left ${failed} ${names.target} refused: run the redrive again.`)
  if (result.notFound.length > 0) tail.push(`Not in ${names.source}: ${result.notFound.join(', ')}`)
  if (interrupted) tail.push(`Interrupted: the messages not sent are still in ${names.source}.`)
  return { result, tail }
}

const SILENT: Logger = {
  info: () => {},
  warn: () => {},
  error: () => {},
  debug: () => {},
  child: () => SILENT,
}

function readContext(backend: Backend, cli: CliContext) {
  return {
    deadLetters: storesOf(backend).deadLetterQueue(),
    pins: storesOf(backend).pins(),
    clock: cli.clock,
  }
}

function viewJson(v: DeadLetterView) {
  return {
    ...v,
    sent: isoTime(v.sentAt),
    ...(v.failedAt === undefined ? {} : { failed: isoTime(v.failedAt) }),
    ...(v.pin ? { pin: { ...v.pin, updatedAt: isoTime(v.pin.updated) } } : {}),
  }
}

function pinState(v: DeadLetterView): string {
  if (!v.cid) return 'not a pin job'
  return v.pin ? v.pin.status : 'no pin'
}

export function registerDlqCommands(program: Command, cli: CliContext): void {
  const dlq = program
    .command('dlq')
    .description(
      'the failed-jobs queue: jobs given up on after MAX_ATTEMPTS receives (their pins failed), kept 14 days; ' +
        "with --collections, the collection jobs' dead-letter queue",
    )

  dlq
    .command('list')
    .description(
      'list failed jobs, oldest first: id, cid, pin status, attempts, receives, when it failed, the reason',
    )
    .option('--limit <n>', 'most messages to read', positiveInt, 1000)
    .addOption(hideOption())
    .option('--json', 'print JSON')
    .option(...COLLECTIONS_FLAG)
    .action(async (opts: { limit: number; hideSeconds: number; json?: boolean; collections?: boolean }) => {
      if (opts.collections) return listCollectionDlq(cli, opts)
      await cli.withBackend(['failedJobsQueueUrl', 'pinsTable'], async (backend) => {
        const views = await cli.interruptible((signal) =>
          backend.run(() =>
            listDeadLetters(
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
          cli.out('the failed-jobs queue is empty\n')
          return
        }
        const now = cli.clock.now()
        cli.out(
          formatTable(
            ['ID', 'CID', 'PIN', 'ATTEMPTS', 'RECEIVES', 'FAILED', 'REASON'],
            views.map((v) => [
              v.id,
              v.cid ?? truncate(v.body ?? '', 40),
              pinState(v),
              v.pin ? String(v.pin.attempts) : '-',
              String(v.receiveCount),
              v.failedAt === undefined ? '-' : `${formatAge(now - v.failedAt)} ago`,
              // Without a recorded reason (a message put in by hand), the pin's last error.
              truncate(v.reason ?? v.pin?.error ?? '', 100),
            ]),
          ),
        )
        if (views.length === opts.limit) cli.err(`(showing the first ${opts.limit}; --limit for more)\n`)
      })
    })

  dlq
    .command('show')
    .description('one failed job in full, with its pin (it stays in the queue)')
    .argument('<id>', 'the message id, as `dlq list` shows it')
    .addOption(hideOption())
    .option('--json', 'print JSON')
    .option(...COLLECTIONS_FLAG)
    .action(async (id: string, opts: { hideSeconds: number; json?: boolean; collections?: boolean }) => {
      if (opts.collections) return showCollectionDlq(cli, id, opts)
      await cli.withBackend(['failedJobsQueueUrl', 'pinsTable'], async (backend) => {
        const v = await cli.interruptible((signal) =>
          backend.run(() =>
            findDeadLetter(id, { hideSeconds: opts.hideSeconds, signal }, readContext(backend, cli)),
          ),
        )
        if (!v) {
          throw new CliError(
            `no message ${id} in the failed-jobs queue (\`pickup dlq list\` shows the ids of those there)`,
          )
        }
        if (opts.json) {
          cli.out(toJson(viewJson(v)))
          return
        }
        const rows: Array<[string, string]> = [
          ['Message', v.id],
          ...(v.cid
            ? ([
                ['CID', v.cid],
                ['Origins', v.origins?.length ? v.origins.join('\n           ') : '(none)'],
              ] as Array<[string, string]>)
            : ([['Body', `${v.body ?? ''} (not a pin job: nothing can process it; purge it)`]] as Array<
                [string, string]
              >)),
          ['Sent', `${isoTime(v.sentAt)} (${formatAge(v.ageMs)} ago)`],
        ]
        if (v.failedAt === undefined) {
          rows.push(['Receives', `${v.receiveCount} (reads of this queue: no failure was recorded with it)`])
        } else {
          rows.push(
            [
              'Failed',
              `${isoTime(v.failedAt)} (${formatAge(cli.clock.now() - v.failedAt)} ago), after ${v.receiveCount} receives`,
            ],
            ['Reason', v.reason ?? '(none recorded)'],
          )
        }
        if (v.cid && v.pin) {
          rows.push(
            ['Pin', `${v.pin.status}, ${v.pin.attempts} attempts, updated ${isoTime(v.pin.updated)}`],
            ['Last error', v.pin.error ?? '(none)'],
          )
        } else if (v.cid) {
          rows.push(['Pin', 'none: no request wants this content any longer (redrive skips it; purge it)'])
        }
        cli.out(`${rows.map(([k, val]) => `${k.padEnd(10)} ${val}`).join('\n')}\n`)
      })
    })

  dlq
    .command('redrive')
    .description(
      'send failed jobs back to the pin queue (with --collections, dead collection jobs back to the collection ' +
        'jobs queue): each is deleted from the queue it was in only once it is on the other, so an ' +
        'interrupted redrive loses nothing (at worst a job is on both, harmlessly)',
    )
    .argument('[ids...]', 'message ids, as `dlq list` shows them')
    .option('--all', 'every message in the queue')
    .option('--limit <n>', 'most messages to send back', positiveInt)
    .addOption(hideOption())
    .option('--json', 'print the outcome as JSON')
    .option(...COLLECTIONS_FLAG)
    .action(async (ids: string[], opts: RedriveAsked & { collections?: boolean }) => {
      if (Boolean(opts.all) === ids.length > 0) {
        throw new CliError('name the messages to redrive (their ids), or pass --all, not both')
      }
      if (opts.collections) return redriveCollectionDlq(cli, ids, opts)
      await cli.withBackend(
        ['failedJobsQueueUrl', 'pinsTable', 'pinQueueUrl', 'requestsTable'],
        async (backend) => {
          const ctx = {
            ...readContext(backend, cli),
            requests: storesOf(backend).requests(),
            queue: storesOf(backend).pinQueue(),
            log: cliLogger(cli.err),
          }
          const ran = await runRedrive(
            cli,
            backend,
            { ids, opts, deadLetters: ctx.deadLetters },
            { target: 'the pin queue', source: 'the failed-jobs queue' },
            (options) => redriveDeadLetters(options, ctx),
          )
          if (!ran) return
          const { result } = ran
          const lines = [
            `Sent ${result.redriven} message${result.redriven === 1 ? '' : 's'} back to the pin queue` +
              (result.requeued > 0 ? ` (${result.requeued} failed pins are queued again).` : '.'),
          ]
          if (result.notDeleted > 0) {
            lines.push(
              `${result.notDeleted} of them could not be deleted from the failed-jobs queue: they are on both ` +
                'queues (harmless; a later redrive sends them again).',
            )
          }
          const s = result.skipped
          if (s.noPin > 0) {
            lines.push(
              `Left ${s.noPin} whose pin no longer exists (no request wants the content): purge them.`,
            )
          }
          if (s.notPinJob > 0) lines.push(`Left ${s.notPinJob} that are not pin jobs: purge them.`)
          lines.push(...ran.tail)
          cli.out(`${lines.join('\n')}\n`)
        },
      )
    })

  dlq
    .command('purge')
    .description('delete every message in the failed-jobs queue (asks first)')
    .option('--yes', 'do not ask (needed when there is no terminal to ask on)')
    .option('--json', 'print the outcome as JSON')
    .option(...COLLECTIONS_FLAG)
    .action(async (opts: { yes?: boolean; json?: boolean; collections?: boolean }) => {
      const queue = opts.collections ? 'collectionDeadLetterQueueUrl' : 'failedJobsQueueUrl'
      const label = opts.collections ? COLLECTION_DLQ : 'the failed-jobs queue'
      const untouched = opts.collections
        ? 'Their collections are not changed.'
        : 'Their pins are not changed.'
      await cli.withBackend([queue], async (backend) => {
        const deadLetters = opts.collections
          ? storesOf(backend).collectionDeadLetterQueue()
          : storesOf(backend).deadLetterQueue()
        const counts = await backend.run(() => deadLetters.counts())
        const n = counts.visible + counts.inFlight + counts.delayed
        if (n === 0) {
          cli.out(opts.json ? toJson({ purged: 0 }) : `${label} is empty\n`)
          return
        }
        if (!opts.yes) {
          if (!cli.prompt) {
            throw new CliError(
              'refusing to purge without confirmation: there is no terminal to ask on; pass --yes',
            )
          }
          const answer = await cli.prompt(
            `Delete all ${n} messages of ${label} ${backend.resource(queue)}? ` +
              `${untouched} This cannot be undone. Type "yes" to confirm: `,
          )
          if (answer.trim().toLowerCase() !== 'yes') {
            cli.err('not purged\n')
            cli.setExitCode(1)
            return
          }
        }
        const { purged } = await backend.run(async () => {
          try {
            return await purgeDeadLetters({ deadLetters, log: SILENT })
          } catch (err) {
            if (err instanceof Error && err.name.endsWith('PurgeQueueInProgress')) {
              throw new CliError('a purge of this queue is already in progress (SQS allows one per 60 s)')
            }
            throw err
          }
        })
        cli.out(opts.json ? toJson({ purged }) : `Purged ${label} (${purged} messages).\n`)
      })
    })
}
