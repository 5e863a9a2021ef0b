/**
 * The `pickup` command line (`npx pickup ...`, or `cli/pickup.js`): operator tasks against local mode or a
 * deployed stack (see ./backend.ts for how it finds them). Each command group lives in its own file under
 * ./commands and registers itself on the program with `register<Name>Commands(program, cli)`.
 */
import { Command, CommanderError } from 'commander'
import { PickupError } from '../core/errors.ts'
import type { Clock } from '../core/ports.ts'
import { type Backend, type BackendOptions, CliError, resolveBackend } from './backend.ts'
import { registerTokenCommands } from './commands/token.ts'

export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  env: Record<string, string | undefined>
}

/** What commands get: output, a clock, and the backend (resolved from the global options when used). */
export interface CliContext {
  out: (text: string) => void
  clock: Clock
  withBackend<T>(work: (backend: Backend) => Promise<T>): Promise<T>
}

const COMMANDS: Array<(program: Command, cli: CliContext) => void> = [registerTokenCommands]

/** Runs the command line; returns the exit code (0 done, 1 failed, 2 usage). */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const program = new Command('pickup')
    .description("pickup's operator tools")
    .option('--data-dir <dir>', 'local mode: its data directory (default PICKUP_DATA_DIR, else .pickup)')
    .option('--aws', 'use the AWS resources named by the environment (TOKEN_TABLE, AWS_REGION)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError()

  const cli: CliContext = {
    out: io.stdout,
    clock: { now: () => Date.now() },
    async withBackend(work) {
      const backend = await resolveBackend(program.opts<BackendOptions>(), io.env)
      try {
        return await work(backend)
      } finally {
        backend.close()
      }
    },
  }
  for (const register of COMMANDS) register(program, cli)

  try {
    await program.parseAsync(argv)
    return 0
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
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
  }
}
