/**
 * `pickup collection add|show|tokens|export|rm`: NFT collections (core/collections/), as an operator sees
 * them. `add` records a collection for a user and queues its enumeration, as `POST /collections` does;
 * `export` writes every archived file, unpacked from the stored CARs with every block verified, and
 * `manifest.json` into a directory.
 */
import { join } from 'node:path'
import { type Command, InvalidArgumentError, Option } from 'commander'
import { createDirectorySink } from '../../adapters/export-dir.ts'
import { createStoredContentReader } from '../../adapters/stored-content.ts'
import { addCollection, removeCollection, summarizeCollection } from '../../core/collections/archive.ts'
import { exportCollection } from '../../core/collections/export.ts'
import {
  type CollectionRecord,
  type CollectionToken,
  collectionRecordJson,
  TOKEN_STATUSES,
  type TokenStatus,
  tokenStatus,
} from '../../core/collections/model.ts'
import type { CollectionStore } from '../../core/collections/ports.ts'
import { CollectionNotFoundError } from '../../core/errors.ts'
import { CliError, storesOf } from '../backend.ts'
import type { CliContext } from '../context.ts'
import { formatTable, isoTime, toJson, truncate } from '../format.ts'
import { createProgress } from '../progress.ts'
import { positiveInt } from './dlq.ts'
import { formatJobFailure } from './dlq-collections.ts'

/** The largest stored CAR `export` reads into memory to unpack files from it. */
const DEFAULT_READ_CAR_BYTES = 256 * 1024 * 1024

function chainId(value: string): number {
  const n = Number(value)
  if (!/^[1-9][0-9]*$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('not a chain id (a positive integer)')
  return n
}

function recordJson(r: CollectionRecord) {
  return { ...collectionRecordJson(r), owner: r.owner }
}

async function findCollection(collections: CollectionStore, id: string): Promise<CollectionRecord> {
  const record = await collections.get(id)
  if (!record) throw new CliError(`no collection ${id}`)
  return record
}

export function registerCollectionCommands(program: Command, cli: CliContext): void {
  const collection = program
    .command('collection')
    .description('NFT collections: archive every token of a contract, export it')

  collection
    .command('add')
    .description("archive a collection for a user (as the user's POST /collections): queues its enumeration")
    .argument(
      '<chain-id>',
      'the EVM chain id (1 for Ethereum); pickup needs a JSON-RPC endpoint for it',
      chainId,
    )
    .argument('<address>', 'the contract, 0x and 40 hex digits')
    .requiredOption('--user <user>', 'the Pinning Service API user the collection belongs to')
    .option('--name <name>', 'a name for it')
    .option('--follow', 'keep watching for new mints once archived, and archive them (the follow tick)')
    .option('--json', 'print JSON')
    .action(
      async (
        chain: number,
        address: string,
        opts: { user: string; name?: string; follow?: boolean; json?: boolean },
      ) => {
        await cli.withBackend(['collectionsTable', 'collectionJobsQueueUrl'], async (backend) => {
          const stores = storesOf(backend)
          const { record, created } = await backend.run(() =>
            addCollection(
              {
                user: opts.user,
                chainId: chain,
                address,
                ...(opts.name !== undefined ? { name: opts.name } : {}),
                ...(opts.follow ? { follow: true } : {}),
              },
              {
                collections: stores.collections(),
                jobs: stores.collectionJobs(),
                chains: backend.chains,
                clock: cli.clock,
              },
            ),
          )
          if (opts.json) {
            cli.out(toJson({ ...recordJson(record), created }))
            return
          }
          cli.out(
            `${created ? 'Added' : 'Already there:'} collection ${record.id} (chain ${record.chainId}, ${record.address}), ${record.status}.\n` +
              `Follow it with \`pickup collection show ${record.id}\`.\n`,
          )
        })
      },
    )

  collection
    .command('show')
    .description('a collection: status, standard, counts of tokens and of the CIDs it pins')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      await cli.withBackend(['collectionsTable', 'pinsTable'], async (backend) => {
        const stores = storesOf(backend)
        const collections = stores.collections()
        const { record, summary } = await backend.run(async () => {
          const record = await findCollection(collections, id)
          return { record, summary: await summarizeCollection(id, { collections, pins: stores.pins() }) }
        })
        if (opts.json) {
          cli.out(toJson({ ...recordJson(record), ...summary }))
          return
        }
        const { tokens: t, cids: c } = summary
        const rows: Array<[string, string]> = [
          ['ID', record.id],
          ['Owner', record.owner],
          ['Contract', `${record.address} on chain ${record.chainId}`],
          ...(record.name ? [['Name', record.name] as [string, string]] : []),
          ['Standard', record.standard ?? '(not detected yet)'],
          ['Status', record.status],
          ...(record.error ? [['Error', record.error] as [string, string]] : []),
          ...(record.lastJobFailure
            ? [['Last job failure', formatJobFailure(record.lastJobFailure)] as [string, string]]
            : []),
          ['Tokens', `${t.total}: ${t.archived} archived, ${t.incomplete} incomplete, ${t.failed} failed`],
          [
            'CIDs',
            `${c.total}: ${c.pinned} pinned, ${c.queued} queued, ${c.pinning} pinning, ${c.failed} failed`,
          ],
          ['Created', isoTime(record.created)],
          ['Updated', isoTime(record.updated)],
        ]
        const width = Math.max(...rows.map(([k]) => k.length))
        cli.out(`${rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join('\n')}\n`)
      })
    })

  collection
    .command('tokens')
    .description('the tokens of a collection in id order, with what became of their metadata and media')
    .argument('<id>')
    .addOption(new Option('--status <status>', 'only tokens of this status').choices([...TOKEN_STATUSES]))
    .option('--limit <n>', 'tokens per page', positiveInt, 100)
    .option('--cursor <cursor>', 'the page after this cursor (printed when more may follow)')
    .option('--json', 'print JSON')
    .action(
      async (id: string, opts: { status?: TokenStatus; limit: number; cursor?: string; json?: boolean }) => {
        await cli.withBackend(['collectionsTable'], async (backend) => {
          const collections = storesOf(backend).collections()
          const page = await backend.run(async () => {
            await findCollection(collections, id)
            return collections.listTokens(id, {
              limit: opts.limit,
              ...(opts.cursor ? { cursor: opts.cursor } : {}),
              ...(opts.status ? { status: opts.status } : {}),
            })
          })
          if (opts.json) {
            cli.out(toJson({ results: page.tokens, ...(page.cursor ? { cursor: page.cursor } : {}) }))
            return
          }
          if (page.tokens.length === 0) {
            // A status filter reads a bounded stretch of tokens: none of it matching is not the end.
            cli.out(
              page.cursor ? `no tokens in this stretch; more: --cursor ${page.cursor}\n` : 'no tokens\n',
            )
            return
          }
          cli.out(
            formatTable(
              ['TOKEN', 'STATUS', 'METADATA', 'MEDIA', 'PROBLEM'],
              page.tokens.map((t) => [
                truncate(t.tokenId, 20),
                tokenStatus(t),
                truncate(t.metadata.uri, 60),
                mediaSummary(t),
                truncate(problemOf(t), 80),
              ]),
            ),
          )
          if (page.cursor) cli.out(`more: --cursor ${page.cursor}\n`)
        })
      },
    )

  collection
    .command('export')
    .description(
      "write every archived token's metadata and media as files, unpacked from the stored CARs (every block verified), and manifest.json",
    )
    .argument('<id>')
    .requiredOption('-o, --output <dir>', 'the directory to write into (created if absent)')
    .option(
      '--max-car-bytes <n>',
      'the largest stored CAR read into memory to unpack',
      positiveInt,
      DEFAULT_READ_CAR_BYTES,
    )
    .option('--json', 'print what was written as JSON (the manifest is in the directory)')
    .action(async (id: string, opts: { output: string; maxCarBytes: number; json?: boolean }) => {
      await cli.withBackend(['collectionsTable', 'pinsTable', 'destinationBucket'], async (backend) => {
        const stores = storesOf(backend)
        const collections = stores.collections()
        const result = await cli.interruptible((signal) =>
          backend.run(async () => {
            const record = await findCollection(collections, id)
            // The total of the last count (the bar grows it if more tokens turn up): no pass over them first.
            const total = record.summary?.tokens.total
            // Progress on stderr, one step per token, as the other long commands; none with --json.
            const progress = opts.json
              ? undefined
              : createProgress({
                  label: 'export',
                  ...(total !== undefined ? { total } : {}),
                  write: cli.err,
                  tty: cli.tty.stderr,
                })
            const summary = await exportCollection(
              { collectionId: id, signal, ...(progress ? { onToken: (n) => progress.update(n) } : {}) },
              {
                collections,
                pins: stores.pins(),
                reader: createStoredContentReader({
                  destination: stores.destination(),
                  maxCarBytes: opts.maxCarBytes,
                }),
                sink: createDirectorySink(opts.output),
              },
            )
            progress?.finish()
            return summary
          }),
        )
        if (opts.json) {
          cli.out(toJson({ output: opts.output, manifest: join(opts.output, 'manifest.json'), ...result }))
          return
        }
        cli.out(
          `Exported ${result.files} files of ${result.tokens} tokens to ${opts.output}` +
            `${result.incomplete > 0 ? ` (${result.incomplete} tokens not wholly archived: see manifest.json)` : ''}.\n`,
        )
      })
    })

  collection
    .command('rm')
    .description('delete a collection and every pin request it made (content nobody else wants is swept)')
    .argument('<id>')
    .action(async (id: string) => {
      await cli.withBackend(['collectionsTable', 'requestsTable', 'pinsTable'], async (backend) => {
        const stores = storesOf(backend)
        const collections = stores.collections()
        await backend.run(async () => {
          const record = await findCollection(collections, id)
          const user = /^psa:(.+)$/.exec(record.owner)?.[1]
          if (user === undefined)
            throw new CliError(`collection ${id} has an owner of no user: ${record.owner}`)
          try {
            await removeCollection(
              { user, id },
              { collections, requests: stores.requests(), pins: stores.pins(), clock: cli.clock },
            )
          } catch (err) {
            if (err instanceof CollectionNotFoundError) throw new CliError(`no collection ${id}`)
            throw err
          }
        })
        cli.out(`Deleted collection ${id} and its pin requests.\n`)
      })
    })
}

function mediaSummary(t: CollectionToken): string {
  if (t.media.length === 0) return t.metadata.status === 'archived' ? 'none' : '-'
  const archived = t.media.filter((m) => m.status === 'archived').length
  return `${archived}/${t.media.length} archived`
}

function problemOf(t: CollectionToken): string {
  const ref = [t.metadata, ...t.media].find((r) => r.status === 'failed')
  return ref?.error ?? ''
}
