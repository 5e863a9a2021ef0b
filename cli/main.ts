/**
 * The `pickup` command line (`npx pickup ...`, or `cli/pickup.js`): operator tasks against local mode or a
 * deployed stack (see ./backend.ts for how it finds them). Each command group lives in its own file under
 * ./commands and registers itself on the program with `register<Name>Commands(program, cli)`.
 *
 * Output: results on stdout (`--json` on every command that reads gives JSON for scripts), progress and
 * diagnostics on stderr, progress bars only when stderr is a terminal. Exit codes: 0 done, 1 failed, 2 usage,
 * 130 interrupted (Ctrl-C: long operations stop after the step in hand; a second Ctrl-C exits at once).
 */
import { Command, CommanderError } from 'commander'
import { PickupError } from '../core/errors.ts'
import { type BackendOptions, CliError, resolveBackend } from './backend.ts'
import { registerCarCommands } from './commands/car.ts'
import { registerCollectionCommands } from './commands/collection.ts'
import { registerDlqCommands } from './commands/dlq.ts'
import { registerPinCommands } from './commands/pin.ts'
import { registerStatsCommand } from './commands/stats.ts'
import { registerTokenCommands } from './commands/token.ts'
import type { CliContext } from './context.ts'

export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  env: Record<string, string | undefined>
  /** Which streams are terminals (progress bars, prompts); none when absent. */
  tty?: { stdin: boolean; stdout: boolean; stderr: boolean }
  /** Asks a question on the terminal and answers the line typed; absent when there is no terminal. */
  prompt?: (question: string) => Promise<string>
  /** Where binary output goes (`car get` without `-o`); absent: there is none. */
  binaryOut?: NodeJS.WritableStream
  /** Aborted when the user interrupts (Ctrl-C); absent: the process's own SIGINT handling is used. */
  signal?: AbortSignal
}

const COMMANDS: Array<(program: Command, cli: CliContext) => void> = [
  registerDlqCommands,
  registerPinCommands,
  registerCarCommands,
  registerStatsCommand,
  registerTokenCommands,
  registerCollectionCommands,
]

const HELP_FOOTER = `
Where it finds pickup:
  local mode  <data dir>/endpoints.json, written by \`npm start\` (--data-dir, else PICKUP_DATA_DIR, else .pickup)
  AWS         --aws, or any variable below set: PIN_TABLE, REQUEST_TABLE, TOKEN_TABLE, PIN_QUEUE_URL,
              DEAD_LETTER_QUEUE_URL, FAILED_JOBS_QUEUE_URL, DESTINATION_BUCKET, COLLECTION_TABLE,
              COLLECTION_JOBS_QUEUE_URL, COLLECTION_DEAD_LETTER_QUEUE_URL (and CHAIN_RPC_<chainId> for
              \`collection add\`), AWS_REGION (else the queue URLs' region), with credentials from the AWS
              SDK's chain (AWS_PROFILE, ...). --outputs .sst/outputs.json fills in what the environment does
              not set from the stage's outputs (written by \`sst deploy\`).
  Each command needs only the resources it uses. See the README, "Operating pickup".

\`dlq\` works on the failed-jobs queue: the jobs the dead-letter consumer gave up on (their pins failed);
\`dlq ... --collections\` on the collection jobs' dead-letter queue (jobs that failed 5 deliveries).
Reading a queue receives its messages: while \`dlq list/show/redrive\` runs they are hidden from other readers,
and for --hide-seconds (30 s) at most if it dies.
`

/** Runs the command line; returns the exit code (0 done, 1 failed, 2 usage, 130 interrupted). */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const program = new Command('pickup')
    .description(
      "pickup's operator tools: failed jobs, pins, stored CARs, statistics, access tokens, NFT collections",
    )
    .option('--data-dir <dir>', 'local mode: its data directory (default PICKUP_DATA_DIR, else .pickup)')
    .option('--aws', 'use the AWS resources named by the environment (see below)')
    .option('--outputs <file>', 'AWS: read resource names from these stage outputs (.sst/outputs.json)')
    .addHelpText('after', HELP_FOOTER)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError()

  let exitCode = 0
  const cli: CliContext = {
    out: io.stdout,
    err: io.stderr,
    clock: { now: () => Date.now() },
    tty: io.tty ?? { stdin: false, stdout: false, stderr: false },
    ...(io.prompt ? { prompt: io.prompt } : {}),
    ...(io.binaryOut ? { binaryOut: io.binaryOut } : {}),
    async withBackend(needs, work, opts) {
      const backend = await resolveBackend(program.opts<BackendOptions>(), io.env, needs, opts?.optional)
      try {
        return await work(backend)
      } finally {
        backend.close()
      }
    },
    async interruptible(work) {
      if (io.signal) return work(io.signal)
      const controller = new AbortController()
      const onSigint = () => {
        if (controller.signal.aborted) process.exit(130)
        io.stderr('\ninterrupted: stopping after the step in hand (Ctrl-C again to exit at once)\n')
        controller.abort(new Error('interrupted'))
      }
      process.on('SIGINT', onSigint)
      try {
        return await work(controller.signal)
      } finally {
        process.off('SIGINT', onSigint)
      }
    },
    setExitCode(code) {
      exitCode = code
    },
  }
  for (const register of COMMANDS) register(program, cli)

  try {
    await program.parseAsync(argv)
    return exitCode
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2
    if (err instanceof CliError || err instanceof PickupError) {
      io.stderr(`pickup: ${err.message}\n`)
      return 1
    }
    io.stderr(
      `pickup: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    )
    return 1
  }
}

function processIo(): CliIo {
  const tty = {
    stdin: Boolean(process.stdin.isTTY),
    stdout: Boolean(process.stdout.isTTY),
    stderr: Boolean(process.stderr.isTTY),
  }
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    tty,
    binaryOut: process.stdout,
    ...(tty.stdin && tty.stderr
      ? {
          async prompt(question: string) {
            const { createInterface } = await import('node:readline/promises')
            const rl = createInterface({ input: process.stdin, output: process.stderr })
            try {
              return await rl.question(question)
            } finally {
              rl.close()
            }
          },
        }
      : {}),
  }
}
