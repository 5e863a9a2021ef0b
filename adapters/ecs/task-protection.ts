/**
 * ECS task scale-in protection, through the ECS agent's endpoint in the task
 * (`PUT $ECS_AGENT_URI/task-protection/v1/state`). While the worker holds jobs, its task is protected, so
 * neither scale-in nor a deployment stops it mid-fetch; when it holds none, protection is lifted.
 *
 * Protection expires on its own (`expiresInMinutes`, 60 by default) and is renewed every half of that while
 * the worker stays busy, so a worker that dies or hangs without lifting it blocks scale-in for at most an
 * hour. Calls are made one at a time, in order, and failures are logged, not thrown: protection is a
 * best-effort optimisation (an unprotected task that is stopped releases its jobs for another worker).
 * The task role needs `ecs:UpdateTaskProtection` (the agent calls ECS with it).
 */
import type { Logger } from '../../core/ports.ts'

export interface TaskProtectionOptions {
  /** `ECS_AGENT_URI`, set by ECS in every container of a task (Fargate platform 1.4+). */
  agentUri: string
  fetch?: typeof globalThis.fetch
  log: Logger
  /** How long one protection lasts (ECS accepts 1 to 2880). Default 60. */
  expiresInMinutes?: number
  /** How often protection is renewed while busy. Default: half of `expiresInMinutes`. */
  renewEveryMs?: number
  /** Each call to the agent gives up after this. Default 10 s. */
  requestTimeoutMs?: number
}

export interface TaskProtection {
  /** Protects the task (busy) or lifts protection (idle). Resolves true when the agent confirmed it. */
  set(busy: boolean): Promise<boolean>
  /** Whether the last confirmed state is protected. */
  readonly protected: boolean
  /** Stops renewing; protection then lapses within `expiresInMinutes`. */
  stop(): void
}

interface AgentResponse {
  protection?: { ProtectionEnabled?: boolean; ExpirationDate?: string }
  failure?: { Reason?: string; Detail?: string }
  error?: { Code?: string; Message?: string }
}

export function createTaskProtection(opts: TaskProtectionOptions): TaskProtection {
  const fetch = opts.fetch ?? globalThis.fetch
  const expiresInMinutes = opts.expiresInMinutes ?? 60
  if (!Number.isInteger(expiresInMinutes) || expiresInMinutes < 1 || expiresInMinutes > 2880) {
    throw new RangeError(`expiresInMinutes must be an integer from 1 to 2880, got ${expiresInMinutes}`)
  }
  const renewEveryMs = opts.renewEveryMs ?? (expiresInMinutes * 60_000) / 2
  const requestTimeoutMs = opts.requestTimeoutMs ?? 10_000
  const url = `${opts.agentUri.replace(/\/+$/, '')}/task-protection/v1/state`
  const log = opts.log.child({ component: 'task-protection' })

  let confirmed = false
  let wanted = false
  let renewal: ReturnType<typeof setInterval> | undefined
  let chain: Promise<boolean> = Promise.resolve(true)
  let pending = 0

  async function put(enabled: boolean): Promise<boolean> {
    const body = enabled
      ? { ProtectionEnabled: true, ExpiresInMinutes: expiresInMinutes }
      : { ProtectionEnabled: false }
    try {
      const res = await fetch(url, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(requestTimeoutMs),
      })
      const text = await res.text()
      let parsed: AgentResponse = {}
      try {
        parsed = JSON.parse(text) as AgentResponse
      } catch {
        // Not JSON: reported below with the status.
      }
      if (!res.ok || parsed.protection?.ProtectionEnabled !== enabled) {
        const reason =
          parsed.error?.Message ?? parsed.failure?.Reason ?? (text.slice(0, 200) || `HTTP ${res.status}`)
        log.warn({ enabled, status: res.status, reason }, 'task protection not updated')
        return false
      }
      confirmed = enabled
      log.debug({ enabled, expires: parsed.protection.ExpirationDate }, 'task protection updated')
      return true
    } catch (err) {
      log.warn(
        { enabled, err: err instanceof Error ? err.message : String(err) },
        'task protection call failed',
      )
      return false
    }
  }

  /** Runs calls one after the other, so the agent sees them in the order they were made. */
  function enqueue(enabled: boolean): Promise<boolean> {
    pending++
    chain = chain.then(() => put(enabled)).finally(() => pending--)
    return chain
  }

  return {
    set(busy) {
      // Already asked for (still in flight) or already in place: nothing new to tell the agent.
      if (busy === wanted && (pending > 0 || busy === confirmed)) return chain
      wanted = busy
      if (busy && !renewal) {
        renewal = setInterval(() => {
          if (wanted) void enqueue(true)
        }, renewEveryMs)
        renewal.unref?.()
      } else if (!busy && renewal) {
        clearInterval(renewal)
        renewal = undefined
      }
      return enqueue(busy)
    },
    get protected() {
      return confirmed
    },
    stop() {
      if (renewal) clearInterval(renewal)
      renewal = undefined
    },
  }
}
