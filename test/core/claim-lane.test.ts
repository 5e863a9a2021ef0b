/**
 * The worker's claim lane (core/claim-lane.ts): claims run a few at a time in the order they came, a hurried
 * claim runs at once without taking a place in the lane, and a withdrawn one never runs.
 */
import { describe, expect, it } from 'vitest'
import { ClaimWithdrawnError, createClaimLane } from '../../core/claim-lane.ts'

/** A claim that runs until `finish` is called; records when it started. */
function claimOf(name: string, started: string[]) {
  let finish!: (value: string) => void
  let fail!: (err: unknown) => void
  const claim = () => {
    started.push(name)
    return new Promise<string>((res, rej) => {
      finish = res
      fail = rej
    })
  }
  return { claim, finish: () => finish(name), fail: (err: unknown) => fail(err) }
}

const tick = () => new Promise((r) => setImmediate(r))

describe('claim lane', () => {
  it('runs at most `concurrency` claims at once, in the order they came', async () => {
    const lane = createClaimLane({ concurrency: 2 })
    const started: string[] = []
    const claims = ['a', 'b', 'c', 'd'].map((n) => claimOf(n, started))
    const tickets = claims.map((c) => lane.enqueue(c.claim))
    await tick()
    expect(started).toEqual(['a', 'b'])
    expect(tickets.map((t) => t.started)).toEqual([true, true, false, false])
    expect(lane.waiting).toBe(2)

    claims[1]!.finish()
    expect(await tickets[1]!.result).toBe('b')
    await tick()
    expect(started).toEqual(['a', 'b', 'c'])
    expect(lane.waiting).toBe(1)
    claims[0]!.fail(new Error('table unreachable'))
    await expect(tickets[0]!.result).rejects.toThrow('table unreachable')
    await tick()
    expect(started).toEqual(['a', 'b', 'c', 'd'])
    expect(lane.waiting).toBe(0)
  })

  it('runs a hurried claim at once, ahead of the lane, without taking a place in it', async () => {
    const lane = createClaimLane({ concurrency: 1 })
    const started: string[] = []
    const [a, b, c] = ['a', 'b', 'c'].map((n) => claimOf(n, started))
    const ta = lane.enqueue(a!.claim)
    const tb = lane.enqueue(b!.claim)
    const tc = lane.enqueue(c!.claim)
    await tick()
    expect(started).toEqual(['a'])

    const hurried = tc.hurry()
    await tick()
    expect(started).toEqual(['a', 'c'])
    expect(tc.started).toBe(true)
    expect(lane.waiting).toBe(1)
    c!.finish()
    expect(await hurried).toBe('c')
    // Its end frees no place: b still waits for a.
    await tick()
    expect(started).toEqual(['a', 'c'])
    a!.finish()
    await ta.result
    await tick()
    expect(started).toEqual(['a', 'c', 'b'])
    // Hurrying a claim that has started changes nothing.
    expect(tb.hurry()).toBe(tb.result)
    b!.finish()
    expect(await tb.result).toBe('b')
  })

  it('never runs a withdrawn claim, and its place goes to the next', async () => {
    const lane = createClaimLane({ concurrency: 1 })
    const started: string[] = []
    const [a, b, c] = ['a', 'b', 'c'].map((n) => claimOf(n, started))
    const ta = lane.enqueue(a!.claim)
    const tb = lane.enqueue(b!.claim)
    const tc = lane.enqueue(c!.claim)
    expect(ta.withdraw()).toBe(false)
    expect(tb.withdraw()).toBe(true)
    expect(tb.withdraw()).toBe(false)
    await expect(tb.result).rejects.toBeInstanceOf(ClaimWithdrawnError)
    expect(lane.waiting).toBe(1)
    a!.finish()
    await ta.result
    await tick()
    expect(started).toEqual(['a', 'c'])
    c!.finish()
    expect(await tc.result).toBe('c')
  })

  it('refuses a concurrency that is not a positive integer', () => {
    expect(() => createClaimLane({ concurrency: 0 })).toThrow(RangeError)
    expect(() => createClaimLane({ concurrency: 1.5 })).toThrow(RangeError)
  })
})
