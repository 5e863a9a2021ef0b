/**
 * `pickup token create|list|revoke`: Pinning Service API access tokens. A token is printed once, on the last
 * line of `create`'s output; only its sha256 is stored, and `list` shows the first 12 hex digits of that hash,
 * which `revoke` accepts (or the token itself).
 */
import type { Command } from 'commander'
import { createAccessToken, listAccessTokens, revokeAccessToken } from '../../core/access-tokens.ts'
import type { AccessTokenRecord } from '../../core/ports.ts'
import { storesOf } from '../backend.ts'
import type { CliContext } from '../context.ts'

const SHORT_HASH = 12

export function registerTokenCommands(program: Command, cli: CliContext): void {
  const token = program.command('token').description('Pinning Service API access tokens (one user each)')

  token
    .command('create')
    .description('create an access token for a user; prints it once, as the last line')
    .argument('<user>', "the user the token acts as (letters, digits, '.', '_', '@', '-')")
    .option('--label <text>', 'what the token is for (a device, an app)')
    .action(async (user: string, opts: { label?: string }) => {
      await cli.withBackend(['tokensTable'], async (backend) => {
        const tokens = storesOf(backend).tokens()
        const { token: secret, record } = await backend.run(() =>
          createAccessToken(
            { user, ...(opts.label ? { label: opts.label } : {}) },
            { tokens, clock: cli.clock },
          ),
        )
        const lines = [
          `Created an access token for ${record.user} (hash ${record.hash.slice(0, SHORT_HASH)}${record.label ? `, label ${JSON.stringify(record.label)}` : ''}).`,
          'Send it as `Authorization: Bearer <token>`. It is shown only this once: pickup keeps only its hash.',
        ]
        if (backend.api) lines.push(`kubo: ipfs pin remote service add pickup ${backend.api}/psa <token>`)
        lines.push(secret)
        cli.out(`${lines.join('\n')}\n`)
      })
    })

  token
    .command('list')
    .description("list tokens (a user's, or everyone's): hash prefix, user, created, label")
    .argument('[user]', 'only this user')
    .option('--json', 'print JSON')
    .action(async (user: string | undefined, opts: { json?: boolean }) => {
      await cli.withBackend(['tokensTable'], async (backend) => {
        const tokens = storesOf(backend).tokens()
        const records = await backend.run(() =>
          listAccessTokens(user === undefined ? {} : { user }, { tokens }),
        )
        cli.out(opts.json ? `${JSON.stringify(records.map(toJson), null, 2)}\n` : table(records))
      })
    })

  token
    .command('revoke')
    .description('revoke a token, given as the token or a prefix of its hash (at least 8 hex digits)')
    .argument('<token-or-hash-prefix>')
    .action(async (ref: string) => {
      await cli.withBackend(['tokensTable'], async (backend) => {
        const tokens = storesOf(backend).tokens()
        const record = await backend.run(() => revokeAccessToken(ref, { tokens }))
        cli.out(`Revoked token ${record.hash.slice(0, SHORT_HASH)} of ${record.user}.\n`)
      })
    })
}

function toJson(r: AccessTokenRecord) {
  return {
    hash: r.hash,
    user: r.user,
    created: new Date(r.created).toISOString(),
    ...(r.label ? { label: r.label } : {}),
  }
}

function table(records: AccessTokenRecord[]): string {
  if (records.length === 0) return 'no tokens\n'
  const rows = [
    ['HASH', 'USER', 'CREATED', 'LABEL'],
    ...records.map((r) => [
      r.hash.slice(0, SHORT_HASH),
      r.user,
      new Date(r.created).toISOString(),
      r.label ?? '',
    ]),
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return `${rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`
}
