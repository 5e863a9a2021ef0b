/**
 * PinStore on DynamoDB (table `pinsTable` in ./tables.ts), one item per pin.
 *
 * Only conditional single-item writes are used, no transactions and no ReturnValuesOnConditionCheckFailure
 * (dynalite, the local implementation, has neither): when a condition fails, the item is read again with a
 * strongly consistent GetItem. Writes that depend on what was read (`request`) are guarded by an internal
 * `version` counter that every write increments (optimistic concurrency). Every write sets `updated`, except
 * setting and clearing the unreferenced mark (neither changes the content or its status).
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb'
import {
  CANCELLED_ERROR,
  type CarInfo,
  copyProgress,
  FETCH_PHASES,
  mergeOrigins,
  PIN_STATUSES,
  type Pin,
  type PinStatus,
  type Progress,
} from '../../core/pin.ts'
import type { ClaimResult, PinPage, PinStore } from '../../core/ports.ts'
import { pinCursor, unreferencedCursor } from '../cursors.ts'
import { batchGetAll } from './batch-get.ts'
import { type Item, isConditionFailed, itemReader, n, S, stringList } from './item.ts'
import { queryPage } from './query-page.ts'
import { indexNamed, pinsTable } from './tables.ts'

const STATUS_INDEX = indexNamed(pinsTable, 'status-updated')
const UNREFERENCED_INDEX = indexNamed(pinsTable, 'unreferenced-since')
/** The constant value of `unreferenced`, the sparse index's partition key. */
const UNREFERENCED = 'true'
/** How many times a write that lost a race is retried (after re-reading the item) before giving up. */
const MAX_CONFLICT_RETRIES = 16

export interface DynamoPinStoreOptions {
  client: DynamoDBClient
  tableName: string
}

// ---------------------------------------------------------------- encoding

/**
 * The item for a pin. Attributes: cid S, status S, created N, updated N, attempts N, origins L(S), error S?,
 * attemptId S?, leaseExpires N?, progress M{bytes N, blocks N, phase S?, searchStarted N?, dialled L(S)?}?,
 * car M{cid S, bytes N, blocks N, key S}?, unreferencedSince N? with unreferenced S ('true', the sparse
 * index's key, present exactly when unreferencedSince is) (plus the store's own `version` N, not part of the
 * Pin).
 */
export function encodePin(pin: Pin): Item {
  const item: Item = {
    cid: { S: pin.cid },
    status: { S: pin.status },
    created: n(pin.created),
    updated: n(pin.updated),
    attempts: n(pin.attempts),
    origins: stringList(pin.origins),
  }
  if (pin.error !== undefined) item.error = { S: pin.error }
  if (pin.attemptId !== undefined) item.attemptId = { S: pin.attemptId }
  if (pin.leaseExpires !== undefined) item.leaseExpires = n(pin.leaseExpires)
  if (pin.progress !== undefined) item.progress = encodeProgress(pin.progress)
  if (pin.car !== undefined) item.car = encodeCar(pin.car)
  if (pin.unreferencedSince !== undefined) {
    item.unreferenced = { S: UNREFERENCED }
    item.unreferencedSince = n(pin.unreferencedSince)
  }
  return item
}

export function decodePin(item: Item): Pin {
  const pin: Pin = {
    cid: str(item, 'cid'),
    status: decodeStatus(str(item, 'status')),
    created: num(item, 'created'),
    updated: num(item, 'updated'),
    attempts: num(item, 'attempts'),
    origins: strings(item, 'origins'),
  }
  if (item.error !== undefined) pin.error = str(item, 'error')
  if (item.attemptId !== undefined) pin.attemptId = str(item, 'attemptId')
  if (item.leaseExpires !== undefined) pin.leaseExpires = num(item, 'leaseExpires')
  if (item.progress !== undefined) {
    const m = map(item, 'progress')
    const progress: Progress = { bytes: num(m, 'bytes'), blocks: num(m, 'blocks') }
    if (m.phase !== undefined) {
      const phase = str(m, 'phase')
      progress.phase = FETCH_PHASES.find((x) => x === phase) ?? fail(`unknown phase ${JSON.stringify(phase)}`)
    }
    if (m.searchStarted !== undefined) progress.searchStarted = num(m, 'searchStarted')
    if (m.dialled !== undefined) progress.dialled = strings(m, 'dialled')
    pin.progress = progress
  }
  if (item.car !== undefined) {
    const m = map(item, 'car')
    pin.car = { cid: str(m, 'cid'), bytes: num(m, 'bytes'), blocks: num(m, 'blocks'), key: str(m, 'key') }
  }
  if (item.unreferencedSince !== undefined) pin.unreferencedSince = num(item, 'unreferencedSince')
  return pin
}

function encodeProgress(progress: Progress): AttributeValue {
  const p = copyProgress(progress)
  const m: Item = { bytes: n(p.bytes), blocks: n(p.blocks) }
  if (p.phase !== undefined) m.phase = { S: p.phase }
  if (p.searchStarted !== undefined) m.searchStarted = n(p.searchStarted)
  if (p.dialled !== undefined) m.dialled = stringList(p.dialled)
  return { M: m }
}

function encodeCar(car: CarInfo): AttributeValue {
  return { M: { cid: { S: car.cid }, bytes: n(car.bytes), blocks: n(car.blocks), key: { S: car.key } } }
}

const { str, num, map, strings, fail } = itemReader('pin')

function decodeStatus(s: string): PinStatus {
  const status = PIN_STATUSES.find((x) => x === s)
  return status ?? fail(`unknown status ${JSON.stringify(s)}`)
}

function decodeVersion(item: Item): number {
  return item.version === undefined ? 0 : num(item, 'version')
}

// ---------------------------------------------------------------- expressions

/** ExpressionAttributeNames for every `#name` in the expressions (DynamoDB rejects unused ones). */
function namesOf(...expressions: (string | undefined)[]): Record<string, string> {
  const names: Record<string, string> = {}
  for (const e of expressions) {
    for (const m of e?.matchAll(/#(\w+)/g) ?? []) names[m[0]] = m[1]!
  }
  return names
}

// ---------------------------------------------------------------- store

export function createDynamoPinStore({ client, tableName }: DynamoPinStoreOptions): PinStore {
  async function read(cid: string): Promise<{ pin: Pin; version: number } | undefined> {
    const res = await client.send(
      new GetItemCommand({ TableName: tableName, Key: { cid: S(cid) }, ConsistentRead: true }),
    )
    return res.Item ? { pin: decodePin(res.Item), version: decodeVersion(res.Item) } : undefined
  }

  /** A conditional UpdateItem returning the new pin, or undefined when the condition failed. */
  async function update(
    cid: string,
    updateExpression: string,
    conditionExpression: string,
    values: Record<string, AttributeValue>,
  ): Promise<Pin | undefined> {
    // Only the values the expressions use: DynamoDB rejects unused ones.
    const tokens = new Set(`${updateExpression} ${conditionExpression}`.match(/:\w+/g))
    const used = Object.fromEntries(Object.entries(values).filter(([k]) => tokens.has(k)))
    try {
      const res = await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: { cid: S(cid) },
          UpdateExpression: updateExpression,
          ConditionExpression: conditionExpression,
          ExpressionAttributeNames: namesOf(updateExpression, conditionExpression),
          ...(Object.keys(used).length > 0 ? { ExpressionAttributeValues: used } : {}),
          ReturnValues: 'ALL_NEW',
        }),
      )
      if (!res.Attributes) throw new Error('UpdateItem returned no attributes')
      return decodePin(res.Attributes)
    } catch (err) {
      if (isConditionFailed(err)) return undefined
      throw err
    }
  }

  const BUMP = '#version = if_not_exists(#version, :zero) + :one'
  /**
   * A pin an attempt may take (waiting for one, or held under a lease that ran out: its worker died) and of
   * which `also` holds. Written as a flat OR of ANDs, without parentheses: dynalite's expression parser
   * backtracks exponentially through nested parentheses (the nested form of this condition took it ~10 ms
   * to parse, local mode's largest cost per job started; this one ~0.3 ms). A missing `#status` compares
   * false, so each term also requires the pin to exist.
   */
  const claimableWhere = (also: string) =>
    `${also} AND #status IN (:queued, :failed) OR ` +
    `${also} AND #status = :pinning AND attribute_not_exists(#leaseExpires) OR ` +
    `${also} AND #status = :pinning AND #leaseExpires < :now`

  async function request(cid: string, origins: readonly string[], now: number) {
    let current: { pin: Pin; version: number } | undefined
    for (let i = 0; i < MAX_CONFLICT_RETRIES; i++) {
      if (current === undefined) {
        const pin: Pin = {
          cid,
          status: 'queued',
          created: now,
          updated: now,
          attempts: 0,
          origins: mergeOrigins([], origins),
        }
        try {
          await client.send(
            new PutItemCommand({
              TableName: tableName,
              Item: { ...encodePin(pin), version: n(1) },
              ConditionExpression: 'attribute_not_exists(#cid)',
              ExpressionAttributeNames: { '#cid': 'cid' },
            }),
          )
          return { pin, enqueue: true }
        } catch (err) {
          if (!isConditionFailed(err)) throw err
        }
        current = await read(cid)
        continue
      }
      const merged = mergeOrigins(current.pin.origins, origins)
      const requeue = current.pin.status === 'failed'
      const marked = current.pin.unreferencedSince !== undefined
      if (!requeue && !marked && sameList(merged, current.pin.origins)) {
        return { pin: current.pin, enqueue: false }
      }
      const updated = await update(
        cid,
        `SET #origins = :origins, #updated = :now, ${BUMP}${requeue ? ', #status = :queued, #attempts = :zero' : ''}` +
          (marked ? ' REMOVE #unreferenced, #unreferencedSince' : ''),
        current.version === 0 ? 'attribute_not_exists(#version)' : '#version = :version',
        {
          ':origins': stringList(merged),
          ':now': n(now),
          ':zero': n(0),
          ':one': n(1),
          ':queued': S('queued'),
          ':version': n(current.version),
        },
      )
      if (updated) return { pin: updated, enqueue: requeue, ...(requeue ? { requeued: true as const } : {}) }
      current = await read(cid)
    }
    throw new Error(`pin ${cid}: request kept losing races with concurrent writes`)
  }

  async function claim(
    cid: string,
    attemptId: string,
    leaseExpires: number,
    now: number,
    progress?: Progress,
  ): Promise<ClaimResult> {
    for (let i = 0; i < MAX_CONFLICT_RETRIES; i++) {
      const pin = await update(
        cid,
        'SET #status = :pinning, #attemptId = :attemptId, #leaseExpires = :lease, #updated = :now, ' +
          `#attempts = if_not_exists(#attempts, :zero) + :one, ${BUMP}` +
          (progress === undefined ? ' REMOVE #progress' : ', #progress = :progress'),
        claimableWhere('attribute_not_exists(#unreferencedSince)'),
        {
          ...(progress === undefined ? {} : { ':progress': encodeProgress(progress) }),
          ':pinning': S('pinning'),
          ':queued': S('queued'),
          ':failed': S('failed'),
          ':attemptId': S(attemptId),
          ':lease': n(leaseExpires),
          ':now': n(now),
          ':zero': n(0),
          ':one': n(1),
        },
      )
      if (pin) return { kind: 'claimed', pin }
      const current = await read(cid)
      if (!current) return { kind: 'missing' }
      if (current.pin.status === 'pinned') return { kind: 'pinned', pin: current.pin }
      if (current.pin.status === 'pinning' && (current.pin.leaseExpires ?? -Infinity) >= now) {
        return { kind: 'busy', pin: current.pin }
      }
      const since = current.pin.unreferencedSince
      if (since !== undefined) {
        // Nobody wants it: fail it as cancelled instead, unless a new request cleared the mark meanwhile.
        const cancelled = await update(
          cid,
          `SET #status = :failed, #error = :error, #updated = :now, ${BUMP} REMOVE #leaseExpires, #progress`,
          claimableWhere('#unreferencedSince = :since'),
          {
            ':failed': S('failed'),
            ':queued': S('queued'),
            ':pinning': S('pinning'),
            ':error': S(CANCELLED_ERROR),
            ':now': n(now),
            ':since': n(since),
            ':zero': n(0),
            ':one': n(1),
          },
        )
        if (cancelled) return { kind: 'cancelled', pin: cancelled }
      }
      // Changed between the write and the read (claimable, or no longer marked): try again.
    }
    throw new Error(`pin ${cid}: claim kept losing races with concurrent writes`)
  }

  return {
    async get(cid) {
      return (await read(cid))?.pin
    },

    async getMany(cids) {
      const keys = [...new Set(cids)].map((cid) => ({ table: tableName, key: { cid: S(cid) } }))
      const items = (await batchGetAll(client, keys)).get(tableName) ?? []
      return new Map(
        items.map((item) => {
          const pin = decodePin(item)
          return [pin.cid, pin]
        }),
      )
    },

    request,
    claim,

    async heartbeat(cid, attemptId, leaseExpires, progress, now) {
      const pin = await update(
        cid,
        `SET #leaseExpires = :lease, #progress = :progress, #updated = :now, ${BUMP}`,
        '#attemptId = :attemptId AND #status = :pinning',
        {
          ':lease': n(leaseExpires),
          ':progress': encodeProgress(progress),
          ':now': n(now),
          ':zero': n(0),
          ':one': n(1),
          ':attemptId': S(attemptId),
          ':pinning': S('pinning'),
        },
      )
      return pin !== undefined
    },

    async settle(cid, attemptId, outcome, now) {
      const pin = await update(
        cid,
        `SET #status = :status, #error = :error, #updated = :now, ${BUMP} REMOVE #leaseExpires, #progress`,
        attemptId === undefined
          ? 'attribute_exists(#cid) AND #status <> :pinned'
          : '#attemptId = :attemptId AND #status = :pinning',
        {
          ':status': S(outcome.status),
          ':error': S(outcome.error),
          ':now': n(now),
          ':zero': n(0),
          ':one': n(1),
          ':pinned': S('pinned'),
          ':pinning': S('pinning'),
          ...(attemptId === undefined ? {} : { ':attemptId': S(attemptId) }),
        },
      )
      return pin !== undefined
    },

    async cancel(cid, attemptId, now) {
      const pin = await update(
        cid,
        `SET #status = :failed, #error = :error, #updated = :now, ${BUMP} REMOVE #leaseExpires, #progress`,
        '#attemptId = :attemptId AND #status = :pinning AND attribute_exists(#unreferencedSince)',
        {
          ':failed': S('failed'),
          ':error': S(CANCELLED_ERROR),
          ':now': n(now),
          ':zero': n(0),
          ':one': n(1),
          ':attemptId': S(attemptId),
          ':pinning': S('pinning'),
        },
      )
      return pin !== undefined
    },

    async markPinned(cid, attemptId, car, now) {
      const pin = await update(
        cid,
        'SET #status = :pinned, #car = :car, #attemptId = :attemptId, #updated = :now, ' +
          `${BUMP} REMOVE #error, #leaseExpires, #progress`,
        // The record must exist: a validation that comes after the sweep deleted it never re-creates it.
        'attribute_exists(#cid) AND #status <> :pinned',
        {
          ':pinned': S('pinned'),
          ':car': encodeCar(car),
          ':attemptId': S(attemptId),
          ':now': n(now),
          ':zero': n(0),
          ':one': n(1),
        },
      )
      return pin !== undefined
    },

    async requeueLostCar(cid, carKey, error, now) {
      const pin = await update(
        cid,
        `SET #status = :queued, #error = :error, #attempts = :zero, #updated = :now, ${BUMP} ` +
          'REMOVE #car, #attemptId, #leaseExpires, #progress',
        '#status = :pinned AND #car.#key = :carKey',
        {
          ':queued': S('queued'),
          ':error': S(error),
          ':now': n(now),
          ':zero': n(0),
          ':one': n(1),
          ':pinned': S('pinned'),
          ':carKey': S(carKey),
        },
      )
      return pin !== undefined
    },

    async listByStatus(status, { limit, cursor, order, updatedBefore }): Promise<PinPage> {
      const after = cursor === undefined ? undefined : pinCursor.decode(cursor, status)
      const before = updatedBefore === undefined ? '' : ' AND #updated < :before'
      const { items, more } = await queryPage(
        client,
        {
          TableName: tableName,
          IndexName: STATUS_INDEX,
          KeyConditionExpression: `#status = :status${before}`,
          ExpressionAttributeNames: namesOf(`#status${before}`),
          ExpressionAttributeValues: {
            ':status': S(status),
            ...(updatedBefore === undefined ? {} : { ':before': n(updatedBefore) }),
          },
          ScanIndexForward: order === 'oldest',
        },
        decodePin,
        { limit, startKey: after && { cid: S(after.cid), status: S(status), updated: n(after.updated) } },
      )
      const last = items[items.length - 1]
      return more && last
        ? { pins: items, cursor: pinCursor.encode(status, last.updated, last.cid) }
        : { pins: items }
    },

    async countByStatus(status, { max }) {
      let count = 0
      let startKey: Item | undefined
      do {
        const res = await client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: STATUS_INDEX,
            KeyConditionExpression: '#status = :status',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':status': S(status) },
            Select: 'COUNT',
            Limit: Math.max(1, max - count),
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        )
        count += res.Count ?? 0
        startKey = res.LastEvaluatedKey
      } while (startKey && count < max)
      return Math.min(count, max)
    },

    async settleIfUnchanged(cid, seen, outcome, now) {
      const pin = await update(
        cid,
        `SET #status = :status, #error = :error, #updated = :now, ${BUMP} REMOVE #leaseExpires, #progress`,
        '#status = :seenStatus AND #updated = :seenUpdated AND #attempts = :seenAttempts AND #status <> :pinned',
        {
          ':status': S(outcome.status),
          ':error': S(outcome.error),
          ':now': n(now),
          ':zero': n(0),
          ':one': n(1),
          ':seenStatus': S(seen.status),
          ':seenUpdated': n(seen.updated),
          ':seenAttempts': n(seen.attempts),
          ':pinned': S('pinned'),
        },
      )
      return pin !== undefined
    },

    async markUnreferenced(cid, now) {
      const pin = await update(
        cid,
        'SET #unreferenced = :unreferenced, #unreferencedSince = if_not_exists(#unreferencedSince, :now), ' +
          BUMP,
        'attribute_exists(#cid)',
        { ':unreferenced': S(UNREFERENCED), ':now': n(now), ':zero': n(0), ':one': n(1) },
      )
      return pin !== undefined
    },

    async listUnreferenced({ markedBefore, markedSince, limit, cursor }): Promise<PinPage> {
      const after = cursor === undefined ? undefined : unreferencedCursor.decode(cursor)
      const { items, more } = await queryPage(
        client,
        {
          TableName: tableName,
          IndexName: UNREFERENCED_INDEX,
          KeyConditionExpression:
            markedSince === undefined
              ? '#unreferenced = :unreferenced AND #unreferencedSince <= :before'
              : '#unreferenced = :unreferenced AND #unreferencedSince BETWEEN :since AND :before',
          ExpressionAttributeNames: {
            '#unreferenced': 'unreferenced',
            '#unreferencedSince': 'unreferencedSince',
          },
          ExpressionAttributeValues: {
            ':unreferenced': S(UNREFERENCED),
            ':before': n(markedBefore),
            ...(markedSince === undefined ? {} : { ':since': n(markedSince) }),
          },
          ScanIndexForward: true,
        },
        decodePin,
        {
          limit,
          startKey: after && {
            cid: S(after.cid),
            unreferenced: S(UNREFERENCED),
            unreferencedSince: n(after.since),
          },
        },
      )
      const last = items[items.length - 1]
      return more && last
        ? { pins: items, cursor: unreferencedCursor.encode(last.unreferencedSince!, last.cid) }
        : { pins: items }
    },

    async clearUnreferenced(cid, since) {
      const pin = await update(
        cid,
        `SET ${BUMP} REMOVE #unreferenced, #unreferencedSince`,
        '#unreferencedSince = :since',
        { ':since': n(since), ':zero': n(0), ':one': n(1) },
      )
      return pin !== undefined
    },

    async deleteUnreferenced(cid, since) {
      try {
        const res = await client.send(
          new DeleteItemCommand({
            TableName: tableName,
            Key: { cid: S(cid) },
            ConditionExpression: '#unreferencedSince = :since AND #status IN (:pinned, :failed)',
            ExpressionAttributeNames: { '#unreferencedSince': 'unreferencedSince', '#status': 'status' },
            ExpressionAttributeValues: { ':since': n(since), ':pinned': S('pinned'), ':failed': S('failed') },
            ReturnValues: 'ALL_OLD',
          }),
        )
        return res.Attributes ? decodePin(res.Attributes) : undefined
      } catch (err) {
        if (isConditionFailed(err)) return undefined
        throw err
      }
    },
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
