/**
 * `pickup dlq list|show|redrive|purge`: the pin queue's dead-letter queue (jobs received MAX_ATTEMPTS times),
 * each message shown beside its pin's state. Reading receives: see core/dead-letters.ts.
 */
import { type Command, InvalidArgumentError, Option } from 'commander'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createSqsDeadLetterQueue } from '../../adapters/sqs/dead-letters.ts'
import { createSqsPinQueue } from '../../adapters/sqs/queue.ts'
import {
  DEFAULT_HIDE_SECONDS,
  type DeadLetterView,
  findDeadLetter,
  listDeadLetters,
  purgeDeadLetters,
  redriveDeadLetters,
} from '../../core/dead-letters.ts'
import type { Logger } from '../../core/ports.ts'
import type { Backend } from '../backend.ts'
import { CliError } from '../backend.ts'
import { formatAge, formatTable, isoTime, toJson, truncate } from '../format.ts'
import type { CliContext } from '../main.ts'
import { createProgress } from '../progress.ts'

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

const SILENT: Logger = {
  info: () => {},
  warn: () => {},
  error: () => {},
  debug: () => {},
  child: () => SILENT,
}

function readContext(backend: Backend, cli: CliContext) {
  return {
    deadLetters: createSqsDeadLetterQueue({
      client: backend.sqs,
      queueUrl: backend.resource('deadLetterQueueUrl'),
    }),
    pins: createDynamoPinStore({ client: backend.dynamodb, tableName: backend.resource('pinsTable') }),
    clock: cli.clock,
  }
}

function viewJson(v: DeadLetterView) {
  return {
    ...v,
    sent: isoTime(v.sentAt),
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
    .description("the pin queue's dead-letter queue: jobs that failed MAX_ATTEMPTS receives")

  dlq
    .command('list')
    .description('list dead letters, oldest first: id, cid, pin status, attempts, receives, age, last error')
    .option('--limit <n>', 'most messages to read', positiveInt, 1000)
    .addOption(hideOption())
    .option('--json', 'print JSON')
    .action(async (opts: { limit: number; hideSeconds: number; json?: boolean }) => {
      await cli.withBackend(['deadLetterQueueUrl', 'pinsTable'], async (backend) => {
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
          cli.out('the dead-letter queue is empty\n')
          return
        }
        cli.out(
          formatTable(
            ['ID', 'CID', 'PIN', 'ATTEMPTS', 'RECEIVES', 'AGE', 'LAST ERROR'],
            views.map((v) => [
              v.id,
              v.cid ?? truncate(v.body ?? '', 40),
              pinState(v),
              v.pin ? String(v.pin.attempts) : '-',
              String(v.receiveCount),
              formatAge(v.ageMs),
              truncate(v.pin?.error ?? '', 100),
            ]),
          ),
        )
        if (views.length === opts.limit) cli.err(`(showing the first ${opts.limit}; --limit for more)\n`)
      })
    })

  dlq
    .command('show')
    .description('one dead letter in full, with its pin (it stays in the queue)')
    .argument('<id>', 'the message id, as `dlq list` shows it')
    .addOption(hideOption())
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { hideSeconds: number; json?: boolean }) => {
      await cli.withBackend(['deadLetterQueueUrl', 'pinsTable'], async (backend) => {
        const v = await cli.interruptible((signal) =>
          backend.run(() =>
            findDeadLetter(id, { hideSeconds: opts.hideSeconds, signal }, readContext(backend, cli)),
          ),
        )
        if (!v) {
          throw new CliError(
            `no message ${id} in the dead-letter queue (\`pickup dlq list\` shows the ids of those there)`,
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
          ['Receives', `${v.receiveCount} (reading the dead-letter queue counts too)`],
        ]
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
      'send dead letters back to the pin queue: each is deleted from the dead-letter queue only once it is on ' +
        'the pin queue, so an interrupted redrive loses nothing (at worst a job is on both, harmlessly)',
    )
    .argument('[ids...]', 'message ids, as `dlq list` shows them')
    .option('--all', 'every message in the dead-letter queue')
    .option('--limit <n>', 'most messages to send back', positiveInt)
    .addOption(hideOption())
    .option('--json', 'print the outcome as JSON')
    .action(
      async (ids: string[], opts: { all?: boolean; limit?: number; hideSeconds: number; json?: boolean }) => {
        if (Boolean(opts.all) === ids.length > 0) {
          throw new CliError('name the messages to redrive (their ids), or pass --all, not both')
        }
        await cli.withBackend(['deadLetterQueueUrl', 'pinsTable', 'pinQueueUrl'], async (backend) => {
          const ctx = {
            ...readContext(backend, cli),
            queue: createSqsPinQueue({ client: backend.sqs, queueUrl: backend.resource('pinQueueUrl') }),
            log: cliLogger(cli.err),
          }
          // Progress: messages looked at, of those in the queue when it started.
          const progress = createProgress({
            label: 'redrive',
            total: (await backend.run(() => ctx.deadLetters.counts())).visible,
            write: cli.err,
            tty: cli.tty.stderr,
          })
          let interrupted = false
          const result = await cli.interruptible(async (signal) => {
            try {
              return await backend.run(() =>
                redriveDeadLetters(
                  {
                    ...(opts.all ? {} : { ids }),
                    ...(opts.limit === undefined ? {} : { limit: opts.limit }),
                    hideSeconds: opts.hideSeconds,
                    signal,
                    onProgress: (p) => progress.update(p.examined),
                  },
                  ctx,
                ),
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
            return
          }
          const lines = [
            `Sent ${result.redriven} message${result.redriven === 1 ? '' : 's'} back to the pin queue` +
              (result.requeued > 0 ? ` (${result.requeued} failed pins are queued again).` : '.'),
          ]
          if (result.notDeleted > 0) {
            lines.push(
              `${result.notDeleted} of them could not be deleted from the dead-letter queue: they are on both ` +
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
          if (s.sendFailed > 0)
            lines.push(`Left ${s.sendFailed} the pin queue refused: run the redrive again.`)
          if (result.notFound.length > 0) {
            lines.push(`Not in the dead-letter queue: ${result.notFound.join(', ')}`)
          }
          if (interrupted)
            lines.push('Interrupted: the messages not sent are still in the dead-letter queue.')
          cli.out(`${lines.join('\n')}\n`)
        })
      },
    )

  dlq
    .command('purge')
    .description('delete every message in the dead-letter queue (asks first)')
    .option('--yes', 'do not ask (needed when there is no terminal to ask on)')
    .option('--json', 'print the outcome as JSON')
    .action(async (opts: { yes?: boolean; json?: boolean }) => {
      await cli.withBackend(['deadLetterQueueUrl'], async (backend) => {
        const deadLetters = createSqsDeadLetterQueue({
          client: backend.sqs,
          queueUrl: backend.resource('deadLetterQueueUrl'),
        })
        const counts = await backend.run(() => deadLetters.counts())
        const n = counts.visible + counts.inFlight + counts.delayed
        if (n === 0) {
          cli.out(opts.json ? toJson({ purged: 0 }) : 'the dead-letter queue is empty\n')
          return
        }
        if (!opts.yes) {
          if (!cli.prompt) {
            throw new CliError(
              'refusing to purge without confirmation: there is no terminal to ask on; pass --yes',
            )
          }
          const answer = await cli.prompt(
            `Delete all ${n} messages of the dead-letter queue ${backend.resource('deadLetterQueueUrl')}? ` +
              'Their pins are not changed. This cannot be undone. Type "yes" to confirm: ',
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
        cli.out(opts.json ? toJson({ purged }) : `Purged the dead-letter queue (${purged} messages).\n`)
      })
    })
}
