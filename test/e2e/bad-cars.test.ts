/**
 * Bad CARs placed in the temporary bucket, as a faulty or malicious worker could upload them: the S3 event
 * reaches the real validator through the emulator, and none is ever promoted. Local mode runs without a
 * worker here, so nothing but the validator acts on these pins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { contentKey } from '../../core/cid.ts'
import { tempCarKey } from '../../core/pin.ts'
import {
  type BadCar,
  flippedByte,
  headerOnly,
  missingBlock,
  trailingGarbage,
  truncatedMidBlock,
  unreachableBlock,
  wrongRoot,
} from '../fixtures/cars.ts'
import { listKeys, startTestSystem, type TestSystem } from '../helpers/system.ts'

let t: TestSystem
beforeAll(async () => {
  t = await startTestSystem({}, { worker: 'none' })
})
afterAll(async () => {
  await t?.stop()
})

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes
}

const cases: BadCar[] = [
  flippedByte(),
  wrongRoot(),
  missingBlock(),
  truncatedMidBlock(),
  trailingGarbage(),
  unreachableBlock(),
  headerOnly(),
]

describe('bad CARs in the temporary bucket', () => {
  let attempt = 0
  it.each(cases.map((c) => [c.name, c] as const))(
    '%s: never promoted, the pin gets the reason',
    async (_, bad) => {
      const cid = contentKey(bad.root)
      const attemptId = `bad${++attempt}`
      const now = Date.now()
      await t.pins.request(cid, [], now)
      const claim = await t.pins.claim(cid, attemptId, now + 60_000, now)
      expect(claim.kind).toBe('claimed')
      await t.temp.put(tempCarKey(cid, attemptId), once(bad.car))

      const started = Date.now()
      let pin = await t.pins.get(cid)
      while (pin?.attemptId === attemptId && pin.status === 'pinning') {
        if (Date.now() - started > 20_000) throw new Error('the validator did not settle the attempt')
        await new Promise((r) => setTimeout(r, 50))
        pin = await t.pins.get(cid)
      }
      expect(pin?.status).toMatch(/^(queued|failed)$/)
      expect(pin?.error?.startsWith(`${bad.code}: `)).toBe(true)
      expect(pin?.car).toBeUndefined()
      expect(await listKeys(t.destination)).toEqual([])
      // The temporary object is deleted once judged (just after the pin is settled).
      for (let i = 0; i < 100 && (await listKeys(t.temp)).length > 0; i++)
        await new Promise((r) => setTimeout(r, 50))
      expect(await listKeys(t.temp)).toEqual([])
    },
  )
})
