/**
 * The collections store: collection records, their tokens and the roots they pin. A DynamoDB adapter
 * (adapters/dynamodb/collections.ts) and an in-memory twin pass one shared suite.
 */
import type {
  CollectionRecord,
  CollectionRoot,
  CollectionStatus,
  CollectionToken,
  JobFailure,
  StoredSummary,
  TokenStatus,
} from './model.ts'

export type CollectionPatch = Partial<
  Pick<
    CollectionRecord,
    | 'status'
    | 'error'
    | 'checkpoint'
    | 'standard'
    | 'name'
    | 'follow'
    | 'followChecked'
    | 'deleting'
    | 'jobId'
  >
> & {
  /** Remove these optional attributes. */
  remove?: ReadonlyArray<'error' | 'checkpoint'>
}

export interface CollectionStore {
  /** Creates the record unless one with its id exists; answers the record that is stored. */
  create(record: CollectionRecord): Promise<{ record: CollectionRecord; created: boolean }>
  get(id: string): Promise<CollectionRecord | undefined>
  /**
   * Applies the patch and sets `updated`; with `ifStatus`, only if the record has one of those statuses; with
   * `ifJobId`, only if its `jobId` is that one (`null`: it has none). Undefined when there is no record or a
   * condition failed.
   */
  update(
    id: string,
    patch: CollectionPatch,
    now: number,
    opts?: { ifStatus?: readonly CollectionStatus[]; ifJobId?: string | null },
  ): Promise<CollectionRecord | undefined>
  /**
   * Stores the counts unless the record holds counts begun at a later time (`asOf`): of two counts racing,
   * the one that began last stays. Does not change `updated`. False when there is no record or it kept its own.
   */
  putSummary(id: string, summary: StoredSummary): Promise<boolean>
  /**
   * Records the last failure of one of the collection's jobs, only that attribute, whatever else the record
   * holds; creates nothing. Does not change `updated`. False when there is no record.
   */
  putJobFailure(id: string, failure: JobFailure): Promise<boolean>
  /**
   * Collections that follow their contract (`follow: true`), never checked first, then the longest unchecked
   * (`followChecked`), at most `limit`.
   */
  listFollowing(opts: { limit: number }): Promise<CollectionRecord[]>
  /** The owner's collections, newest first. */
  listByOwner(
    owner: string,
    opts: { limit: number; cursor?: string },
  ): Promise<{ collections: CollectionRecord[]; cursor?: string }>
  /** Creates or replaces tokens (by collection and token id). */
  putTokens(tokens: readonly CollectionToken[]): Promise<void>
  getToken(collectionId: string, tokenId: string): Promise<CollectionToken | undefined>
  /** Those of these tokens that exist, by token id (one batched read, for a page of enumeration). */
  getTokens(collectionId: string, tokenIds: readonly string[]): Promise<Map<string, CollectionToken>>
  /**
   * Tokens in token id order (numeric), optionally only those of one status. With a status, one call reads at
   * most `tokenScanBudget(limit)` tokens, matching or not: a page may hold fewer than `limit` tokens, even
   * none, and still have a cursor (more may follow); only a page without one is the last.
   */
  listTokens(
    collectionId: string,
    opts: { limit: number; cursor?: string; status?: TokenStatus },
  ): Promise<{ tokens: CollectionToken[]; cursor?: string }>
  /** Records roots the collection pins (idempotent). */
  putRoots(collectionId: string, roots: readonly CollectionRoot[]): Promise<void>
  /** Roots in CID order. */
  listRoots(
    collectionId: string,
    opts: { limit: number; cursor?: string },
  ): Promise<{ roots: CollectionRoot[]; cursor?: string }>
  /** Deletes the record, its tokens and its roots. False when there was no record. */
  delete(id: string): Promise<boolean>
}

/** Most tokens one status-filtered listTokens reads: twice the page, at least 1,000. */
export function tokenScanBudget(limit: number): number {
  return Math.max(1000, 2 * limit)
}
