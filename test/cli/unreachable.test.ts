/**
 * Every `pickup` command says what it cannot reach and what to do: against a local mode that was stopped
 * (its endpoints.json left behind), and for AWS with settings missing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServices } from '../../local/services.ts'
import { pickup, runPickup } from './helpers.ts'

let dataDir: string
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'pickup-cli-dead-'))
  // What `npm start` leaves behind once stopped.
  const services = await startServices()
  const { endpoints, credentials, names } = services
  await writeFile(
    join(dataDir, 'endpoints.json'),
    JSON.stringify({ api: 'http://127.0.0.1:1', aws: { ...endpoints, credentials }, resources: names }),
  )
  await services.stop()
})
afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

const CID = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'

const COMMANDS = [
  ['dlq', 'list'],
  ['dlq', 'list', '--json'],
  ['dlq', 'show', 'some-id'],
  ['dlq', 'redrive', '--all'],
  ['dlq', 'redrive', 'some-id'],
  ['dlq', 'purge', '--yes'],
  ['pin', 'show', CID],
  ['pin', 'show', CID, '--json'],
  ['pin', 'retry', CID],
  ['pins', 'list', '--status', 'failed', '--json'],
  ['stats'],
  ['stats', '--json'],
  ['car', 'get', CID, '-o', '/dev/null'],
  ['token', 'list', '--json'],
  ['token', 'create', 'alice'],
  ['token', 'revoke', 'abcdef0123'],
]

describe('against a stopped local mode', () => {
  it.each(COMMANDS.map((c) => [c.join(' '), c]))('`pickup %s` says what it cannot reach', async (_, args) => {
    const res = await pickup(dataDir, args as string[])
    expect(res.code).toBe(1)
    expect(res.stdout).toBe('')
    expect(res.stderr).toMatch(
      /^pickup: cannot reach local mode's (DynamoDB|SQS|S3) at http:\/\/127\.0\.0\.1:\d+ \(from .*endpoints\.json\): is local mode running\? Start it with `npm start`/,
    )
  })

  it('says so from a real process too', async () => {
    const res = await runPickup(dataDir, ['dlq', 'list'])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/^pickup: cannot reach local mode's SQS at http:\/\/127\.0\.0\.1:\d+ /)
  })

  it('names a data directory without local mode', async () => {
    const res = await pickup(dataDir, ['stats'], { env: { PICKUP_DATA_DIR: join(dataDir, 'nope') } })
    expect(res).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/endpoints\.json does not exist.*\n.*npm start/),
    })
  })

  it('names what an old endpoints.json lacks', async () => {
    const old = await mkdtemp(join(tmpdir(), 'pickup-cli-old-'))
    await writeFile(
      join(old, 'endpoints.json'),
      JSON.stringify({
        aws: {
          dynamodb: 'http://127.0.0.1:9',
          region: 'us-east-1',
          credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
        },
        resources: { tokensTable: 't', pinsTable: 'p' },
      }),
    )
    const res = await pickup(old, ['dlq', 'list'], { env: { PICKUP_DATA_DIR: old } })
    expect(res).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/lacks resources\.failedJobsQueueUrl, aws\.sqs .*restart local mode/),
    })
    await rm(old, { recursive: true, force: true })
  })
})

describe('for AWS', () => {
  it('names every setting the command needs and lacks', async () => {
    const res = await pickup(dataDir, ['--aws', 'dlq', 'redrive', '--all'], { env: {} })
    expect(res.code).toBe(1)
    for (const name of ['FAILED_JOBS_QUEUE_URL', 'PIN_TABLE', 'PIN_QUEUE_URL', 'AWS_REGION', '--outputs']) {
      expect(res.stderr).toContain(name)
    }
    expect(res.stderr).not.toContain('TOKEN_TABLE')
    expect(res.stderr).not.toContain('DEAD_LETTER_QUEUE_URL')
  })

  it('is chosen by a resource variable, and fills the rest from the stage outputs', async () => {
    const chosen = await pickup(dataDir, ['pin', 'show', CID], { env: { PIN_TABLE: 'prod-pickup-pins' } })
    expect(chosen.stderr).toMatch(/^pickup: for AWS, set REQUEST_TABLE .* and AWS_REGION/)

    const outputs = join(dataDir, 'outputs.json')
    await writeFile(
      outputs,
      JSON.stringify({
        'prod-pickup-DataStack': { PinsTable: 'prod-pickup-pins' },
        'prod-pickup-PipelineStack': {
          PinQueueUrl: 'https://sqs.eu-west-1.amazonaws.com/123456789012/prod-pickup-pin',
        },
      }),
    )
    const partial = await pickup(dataDir, ['--outputs', outputs, 'stats'], { env: {} })
    // The region comes from the queue URL; only the dead-letter and failed-jobs queues and the workers table
    // are missing.
    expect(partial.stderr).toMatch(
      /^pickup: for AWS, set DEAD_LETTER_QUEUE_URL \(the dead-letter queue, e\.g\. [^)]*\) and FAILED_JOBS_QUEUE_URL \(the failed-jobs queue, e\.g\. [^)]*pin-failed\) and WORKER_TABLE \(the workers table, e\.g\. [^)]*-workers\)\n$/,
    )
    expect(
      await pickup(dataDir, ['--outputs', join(dataDir, 'none.json'), 'stats'], { env: {} }),
    ).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/cannot read the stage outputs .*none\.json.*sst deploy/),
    })
  })
})
