/**
 * `pickup car get <cid> [-o file]`: the stored CAR of a pinned CID, streamed from the destination bucket to a
 * file (written beside it and renamed into place once complete) or to stdout.
 */
import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Command } from 'commander'
import { openStoredCar } from '../../core/pin-admin.ts'
import { CliError, storesOf } from '../backend.ts'
import type { CliContext } from '../context.ts'
import { formatBytes } from '../format.ts'
import { createProgress } from '../progress.ts'

export function registerCarCommands(program: Command, cli: CliContext): void {
  program
    .command('car')
    .description('stored CARs')
    .command('get')
    .description('download the stored CAR of a pinned CID (to stdout without -o)')
    .argument('<cid>', 'the content CID (any version or base)')
    .option('-o, --output <file>', 'write it to this file')
    .action(async (cid: string, opts: { output?: string }) => {
      if (!opts.output && (cli.tty.stdout || !cli.binaryOut)) {
        throw new CliError('a CAR is binary: give a file with -o, or redirect stdout (`> file.car`)')
      }
      await cli.withBackend(['pinsTable', 'destinationBucket'], async (backend) => {
        await cli.interruptible((signal) =>
          backend.run(async () => {
            const { pin, object } = await openStoredCar(
              cid,
              {
                pins: storesOf(backend).pins(),
                destination: storesOf(backend).destination(),
              },
              signal,
            )
            const progress = opts.output
              ? createProgress({ label: 'download', total: object.size, write: cli.err, tty: cli.tty.stderr })
              : undefined
            let bytes = 0
            const count = new Transform({
              transform(chunk: Buffer, _enc, done) {
                bytes += chunk.length
                progress?.update(bytes)
                done(null, chunk)
              },
            })
            if (!opts.output) {
              await pipeline(Readable.from(object.body), count, cli.binaryOut!, { end: false, signal })
            } else {
              const partial = `${opts.output}.partial`
              try {
                await pipeline(Readable.from(object.body), count, createWriteStream(partial), { signal })
                if (bytes !== object.size) {
                  throw new CliError(`the download ended after ${bytes} of ${object.size} bytes; try again`)
                }
                await rename(partial, opts.output)
              } catch (err) {
                await rm(partial, { force: true })
                throw err
              } finally {
                progress?.finish()
              }
              cli.err(`Wrote ${pin.car?.key} (${formatBytes(bytes)}) to ${opts.output}\n`)
            }
          }),
        )
      })
    })
}
