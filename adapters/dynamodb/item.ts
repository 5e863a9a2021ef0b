/**
 * Encoding and decoding helpers for DynamoDB items, shared by the stores. Items are decoded explicitly and
 * checked as they are read: an attribute of the wrong type is a MalformedItemError naming the item kind and
 * the attribute, never a value cast into shape.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb'

export type Item = Record<string, AttributeValue>

export class MalformedItemError extends Error {
  override readonly name = 'MalformedItemError'
}

/** A conditional write whose condition did not hold. */
export function isConditionFailed(err: unknown): boolean {
  return err instanceof Error && err.name === 'ConditionalCheckFailedException'
}

export const S = (s: string): AttributeValue => ({ S: s })

export function n(value: number): AttributeValue {
  if (!Number.isFinite(value)) throw new TypeError(`not a finite number: ${value}`)
  return { N: String(value) }
}

export function stringList(values: readonly string[]): AttributeValue {
  return { L: values.map((v) => ({ S: v })) }
}

/** Readers of one kind of item (`pin`, `request`, ...), whose errors name it. */
export function itemReader(kind: string) {
  const fail = (what: string): never => {
    throw new MalformedItemError(`${kind} item: ${what}`)
  }
  return {
    fail,
    str(item: Item, name: string): string {
      const v = item[name]?.S
      return v === undefined ? fail(`${name} is not a string`) : v
    },
    num(item: Item, name: string): number {
      const v = item[name]?.N
      const x = v === undefined ? Number.NaN : Number(v)
      return Number.isFinite(x) ? x : fail(`${name} is not a number`)
    },
    map(item: Item, name: string): Item {
      const v = item[name]?.M
      return v === undefined ? fail(`${name} is not a map`) : v
    },
    /** A list of strings; absent reads as empty. */
    strings(item: Item, name: string): string[] {
      const value = item[name]
      if (value === undefined) return []
      if (value.L === undefined) return fail(`${name} is not a list`)
      return value.L.map((v) => (v.S === undefined ? fail(`an element of ${name} is not a string`) : v.S))
    },
  }
}
