/**
 * DAG completeness: the CAR must hold exactly the DAG under the expected root. The ledger records every
 * distinct block and link target as the sections go by (one map entry each, within the budget of
 * `maxBlocks`), and at the end checks that the root and every link target are present (inline CIDs carry
 * their data and need no block) and that every block is linked from the root's DAG.
 */
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { blockKey, isInline } from '../links.ts'
import { inlineLinks } from './blocks.ts'
import { Fault } from './faults.ts'

const PRESENT = 1
const LINKED = 2
const INLINE = 4
/** Map values: `offset * FLAGS + flags`, the offset being that of the block's first section. */
const FLAGS = 8

export class DagLedger {
  private readonly expectedRoot: CID
  private readonly maxBlocks: number
  private readonly dag = new Map<string, number>()
  private rootKey = ''
  private rootInline = false
  /** Distinct blocks present (a repeated block counts once). */
  blocks = 0

  constructor(expectedRoot: CID, maxBlocks: number) {
    this.expectedRoot = expectedRoot
    this.maxBlocks = maxBlocks
  }

  /** The header's roots: exactly one, the expected root (a CIDv0 and its CIDv1 are the same root). */
  roots(cids: readonly CID[]): void {
    if (cids.length !== 1) {
      throw new Fault(
        'CAR_ROOTS_INVALID',
        `the header names ${cids.length} roots, not exactly one${cids.length ? `: ${cids.join(', ')}` : ''}`,
        0,
      )
    }
    const root = cids[0]!
    if (!root.toV1().equals(this.expectedRoot.toV1())) {
      throw new Fault('CAR_ROOT_MISMATCH', `the header's root is ${root}, not ${this.expectedRoot}`, 0)
    }
    this.rootKey = blockKey(root)
    if (isInline(root)) {
      // The root's data is its CID: it needs no block, but what it links to does.
      this.rootInline = true
      this.link(root, 0)
    }
  }

  /**
   * Records a verified block found in the section at `offset`. True for its first copy, whose links the
   * caller then records; false for a repeat (already verified too), whose links are those of the first.
   */
  addBlock(cid: CID, offset: number): boolean {
    const key = blockKey(cid)
    const seen = this.dag.get(key) ?? 0
    if ((seen % FLAGS) & PRESENT) return false
    if (seen === 0) this.budget(offset)
    this.dag.set(key, (seen % FLAGS) + offset * FLAGS + PRESENT)
    this.blocks++
    return true
  }

  /** Records a link found at `at`; an inline target's own links are followed at once (its data is in the CID). */
  link(target: CID, at: number): void {
    const key = blockKey(target)
    // Arithmetic, not bitwise: the offset in the value may exceed 32 bits.
    const seen = this.dag.get(key) ?? 0
    if ((seen % FLAGS) & LINKED) return
    if (seen === 0) this.budget(at)
    if (!isInline(target)) {
      this.dag.set(key, seen + LINKED)
      return
    }
    this.dag.set(key, seen + LINKED + INLINE)
    for (const link of inlineLinks(target, at)) this.link(link, at)
  }

  /** Before a new key goes into the map: the budget of distinct blocks (link targets included). */
  private budget(at: number): void {
    if (this.dag.size >= this.maxBlocks) {
      throw new Fault(
        'DAG_TOO_MANY_BLOCKS',
        `the DAG has more than ${this.maxBlocks} blocks (distinct blocks and link targets, found by offset ${at}): over MAX_DAG_BLOCKS`,
        at,
      )
    }
  }

  /** The whole-DAG checks: the root and every link target present, every other block linked. */
  check(end: number): void {
    let missing = 0
    let firstMissing: string | undefined
    const rootFlags = this.dag.get(this.rootKey) ?? 0
    const rootMissing = !this.rootInline && (rootFlags & PRESENT) === 0
    if (rootMissing) missing++
    let unreachable = 0
    let firstUnreachable: { key: string; offset: number } | undefined
    for (const [key, value] of this.dag) {
      const flags = value % FLAGS
      if ((flags & (PRESENT | INLINE)) === 0) {
        if (key === this.rootKey) continue
        missing++
        firstMissing ??= key
      } else if ((flags & (PRESENT | LINKED)) === PRESENT && key !== this.rootKey) {
        unreachable++
        firstUnreachable ??= { key, offset: Math.floor(value / FLAGS) }
      }
    }
    if (missing > 0) {
      const others = rootMissing ? missing - 1 : missing
      const first = rootMissing
        ? `the root block ${this.expectedRoot} is not in the CAR`
        : `block ${cidFromKey(firstMissing!)} is linked but not in the CAR`
      const rest = rootMissing
        ? others > 0
          ? ` (nor ${others} linked block${others === 1 ? '' : 's'}, e.g. ${cidFromKey(firstMissing!)})`
          : ''
        : ` (${missing} linked block${missing === 1 ? ' is' : 's are'} missing)`
      throw new Fault('DAG_INCOMPLETE', `the DAG is incomplete: ${first}${rest}`, end)
    }
    if (firstUnreachable) {
      throw new Fault(
        'CAR_UNREACHABLE_BLOCK',
        `block ${cidFromKey(firstUnreachable.key)} at offset ${firstUnreachable.offset} is not linked from the root's DAG` +
          (unreachable > 1 ? ` (nor are ${unreachable - 1} other blocks)` : ''),
        end,
      )
    }
  }
}

/** The CIDv1 a block key stands for, to name a block in a reason. */
function cidFromKey(key: string): CID {
  const sep = key.indexOf(':')
  const code = Number.parseInt(key.slice(0, sep), 36)
  return CID.createV1(code, Digest.decode(Buffer.from(key.slice(sep + 1), 'base64')))
}
