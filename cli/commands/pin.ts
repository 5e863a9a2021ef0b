/**
 * `pickup pin show|retry <cid>` and `pickup pins list --status <s>`: one pin in full (status, attempts, last
 * error, stored CAR, who wants it), sending it to the queue again, and the pins of a status, page by page.
 */
import { type Command, InvalidArgumentError, Option } from 'commander'
import { PIN_STATUSES, type Pin, type PinStatus } from '../../core/pin.ts'
import { listPins, retryPin, showPin } from '../../core/pin-admin.ts'
import { storesOf } from '../backend.ts'
import type { CliContext } from '../context.ts'
import { formatAge, formatBytes, formatTable, isoTime, toJson, truncate } from '../format.ts'
import { cliLogger, positiveInt } from './dlq.ts'

const REQUEST_LIMIT = 20

function pinJson(pin: Pin) {
  return {
    ...pin,
    createdAt: isoTime(pin.created),
    updatedAt: isoTime(pin.updated),
    ...(pin.leaseExpires === undefined ? {} : { leaseExpiresAt: isoTime(pin.leaseExpires) }),
  }
}

function statusLine(pin: Pin, now: number): string {
  if (pin.status === 'pinning') {
    const lease = pin.leaseExpires ?? 0
    return lease >= now
      ? `pinning (attempt ${pin.attemptId ?? '?'}, lease for ${formatAge(lease - now)} more)`
      : `pinning, but its lease expired ${formatAge(now - lease)} ago (the worker died; the reconciler will enqueue it again)`
  }
  return pin.status
}

export function registerPinCommands(program: Command, cli: CliContext): void {
  const pin = program.command('pin').description('one pin (content), by CID')

  pin
    .command('show')
    .description('status, attempts, last error, stored CAR (CID, key, size) and the requests that want it')
    .argument('<cid>', 'the content CID (any version or base)')
    .option('--json', 'print JSON')
    .action(async (cid: string, opts: { json?: boolean }) => {
      await cli.withBackend(['pinsTable', 'requestsTable'], async (backend) => {
        const { pin: p, requests } = await backend.run(() =>
          showPin(
            cid,
            { requestLimit: REQUEST_LIMIT },
            {
              pins: storesOf(backend).pins(),
              requests: storesOf(backend).requests(),
            },
          ),
        )
        if (opts.json) {
          cli.out(
            toJson({
              pin: pinJson(p),
              requests: requests.map((r) => ({ ...r, createdAt: isoTime(r.created) })),
            }),
          )
          return
        }
        const now = cli.clock.now()
        const rows: Array<[string, string]> = [
          ['CID', p.cid],
          ['Status', statusLine(p, now)],
          ['Attempts', String(p.attempts)],
          ['Last error', p.error ?? '(none)'],
          ['Created', `${isoTime(p.created)} (${formatAge(now - p.created)} ago)`],
          ['Updated', `${isoTime(p.updated)} (${formatAge(now - p.updated)} ago)`],
        ]
        if (p.progress)
          rows.push(['Progress', `${formatBytes(p.progress.bytes)}, ${p.progress.blocks} blocks`])
        if (p.car) {
          rows.push(
            ['CAR CID', p.car.cid],
            ['CAR key', p.car.key],
            ['CAR size', `${formatBytes(p.car.bytes)}, ${p.car.blocks} blocks`],
          )
        }
        rows.push(['Origins', p.origins.length > 0 ? p.origins.join('\n            ') : '(none)'])
        if (p.unreferencedSince !== undefined) {
          rows.push([
            'Unwanted',
            `since ${isoTime(p.unreferencedSince)}: no request wants it; deleted after the retention period`,
          ])
        }
        const who =
          requests.length === 0
            ? '(none)'
            : requests
                .map(
                  (r) => `${r.owner} ${r.requestid}${r.name ? ` "${r.name}"` : ''} (${isoTime(r.created)})`,
                )
                .join('\n            ') +
              (requests.length === REQUEST_LIMIT ? '\n            (and maybe more)' : '')
        rows.push(['Requesters', who])
        cli.out(`${rows.map(([k, v]) => `${k.padEnd(11)} ${v}`).join('\n')}\n`)
      })
    })

  pin
    .command('retry')
    .description(
      'send the pin to the pin queue again: a failed, queued or abandoned one is set queued (its last error ' +
        'kept) and a job is sent; a pinned one is left alone',
    )
    .argument('<cid>', 'the content CID (any version or base)')
    .option('--force', 'also take it from a worker that holds it under a live lease (that attempt stops)')
    .option('--json', 'print the outcome as JSON')
    .action(async (cid: string, opts: { force?: boolean; json?: boolean }) => {
      await cli.withBackend(['pinsTable', 'pinQueueUrl', 'requestsTable'], async (backend) => {
        const outcome = await backend.run(() =>
          retryPin(
            cid,
            { force: Boolean(opts.force) },
            {
              pins: storesOf(backend).pins(),
              requests: storesOf(backend).requests(),
              queue: storesOf(backend).pinQueue(),
              clock: cli.clock,
              log: cliLogger(cli.err),
            },
          ),
        )
        if (outcome.kind === 'busy') cli.setExitCode(1)
        if (opts.json) {
          cli.out(toJson({ outcome: outcome.kind, pin: pinJson(outcome.pin) }))
          return
        }
        const p = outcome.pin
        if (outcome.kind === 'pinned') cli.out(`${p.cid} is already pinned: nothing to retry.\n`)
        else if (outcome.kind === 'busy') {
          cli.err(
            `${p.cid} is being pinned by attempt ${p.attemptId ?? '?'} (lease until ` +
              `${isoTime(p.leaseExpires ?? 0)}); wait for it, or pass --force to take it over\n`,
          )
        } else {
          cli.out(`${p.cid} was ${outcome.was}; it is queued and a job is on the pin queue.\n`)
        }
      })
    })

  program
    .command('pins')
    .description('pins by status')
    .command('list')
    .description('the pins of a status, newest first (by last update), one page at a time')
    .addOption(
      new Option('--status <status>', 'queued, pinning, pinned or failed')
        .makeOptionMandatory()
        .argParser((v: string): PinStatus => {
          const s = PIN_STATUSES.find((x) => x === v)
          if (!s) throw new InvalidArgumentError(`one of ${PIN_STATUSES.join(', ')}`)
          return s
        }),
    )
    .option('--limit <n>', 'pins per page', positiveInt, 50)
    .option('--cursor <cursor>', 'the next page, as the previous page printed it')
    .option('--oldest', 'oldest first')
    .option('--json', 'print JSON: { pins, cursor }')
    .action(
      async (opts: {
        status: PinStatus
        limit: number
        cursor?: string
        oldest?: boolean
        json?: boolean
      }) => {
        await cli.withBackend(['pinsTable'], async (backend) => {
          const page = await backend.run(() =>
            listPins(
              opts.status,
              {
                limit: opts.limit,
                ...(opts.cursor === undefined ? {} : { cursor: opts.cursor }),
                ...(opts.oldest ? { order: 'oldest' as const } : {}),
              },
              {
                pins: storesOf(backend).pins(),
              },
            ),
          )
          if (opts.json) {
            cli.out(toJson({ pins: page.pins.map(pinJson), ...(page.cursor ? { cursor: page.cursor } : {}) }))
            return
          }
          if (page.pins.length === 0) {
            cli.out(`no ${opts.status} pins\n`)
            return
          }
          const now = cli.clock.now()
          cli.out(
            formatTable(
              ['CID', 'ATTEMPTS', 'UPDATED', 'SIZE', 'LAST ERROR'],
              page.pins.map((p) => [
                p.cid,
                String(p.attempts),
                `${formatAge(now - p.updated)} ago`,
                p.car ? String(p.car.bytes) : '',
                truncate(p.error ?? '', 100),
              ]),
            ),
          )
          if (page.cursor) {
            cli.out(
              `next page: pickup pins list --status ${opts.status} --limit ${opts.limit}` +
                `${opts.oldest ? ' --oldest' : ''} --cursor ${page.cursor}\n`,
            )
          }
        })
      },
    )
}
