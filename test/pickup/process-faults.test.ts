/**
 * The sidecar's process-level fault handlers, in a real Node process with the real (pino) logger: an unhandled
 * rejection is logged and the process goes on; an uncaught exception is logged and the process exits with 1.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))

function run(script: string): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let stdout = ''
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString()
  })
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout })))
}

const setup = `
import { createLogger } from './adapters/log.ts'
import { handleProcessFaults } from './pickup/process-faults.ts'
handleProcessFaults(process, createLogger('pickup-worker'))
const turn = () => new Promise((r) => setImmediate(r))
`

function lines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

describe('process fault handlers of the worker', () => {
  it('log an unhandled rejection (a settle SQS refused) and keep the process running', async () => {
    const { code, stdout } = await run(`${setup}
Promise.reject(new Error('SQS unavailable (send)'))
await turn(); await turn()
console.log(JSON.stringify({ msg: 'still running' }))
`)
    expect(code).toBe(0)
    const logged = lines(stdout)
    const fault = logged.find((l) => /unhandled rejection/.test(String(l.msg)))
    expect(fault).toMatchObject({ level: 50, err: { code: 'INTERNAL', message: 'SQS unavailable (send)' } })
    // The process went on after the rejection (pino and console.log may reach the pipe in either order).
    expect(logged).toContainEqual({ msg: 'still running' })
  })

  it('log an uncaught exception and exit with 1', async () => {
    const { code, stdout } = await run(`${setup}
setImmediate(() => { throw new Error('broken state') })
await turn(); await turn()
console.log(JSON.stringify({ msg: 'still running' }))
`)
    expect(code).toBe(1)
    const logged = lines(stdout)
    expect(logged.find((l) => /uncaught exception/.test(String(l.msg)))).toMatchObject({
      level: 50,
      err: { message: 'broken state' },
    })
    expect(logged.some((l) => l.msg === 'still running')).toBe(false)
  })
})
