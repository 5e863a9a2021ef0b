/**
 * The web importer of token content: the URL's body streamed (guarded-http.ts) into @helia/unixfs's importer
 * (CIDv1, raw leaves, 1 MiB chunks, balanced layout: its defaults) over a blockstore on disk in a directory of
 * its own under `tmpDir` (a Lambda's /tmp), so memory stays bounded whatever the file's size; the directory is
 * removed on `close`, or at once when the import fails.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unixfs } from '@helia/unixfs'
import { FsBlockstore } from 'blockstore-fs'
import { collectBytes } from '../../core/bytes.ts'
import { WebContentError, type WebImport, type WebImporter } from '../../core/collections/web.ts'
import { type GuardedGetOptions, guardedGet } from './guarded-http.ts'

export interface WebImporterOptions
  extends Pick<GuardedGetOptions, 'allowPrivate' | 'timeoutMs' | 'maxRedirects' | 'permit' | 'resolve'> {
  /** Where imports keep their blocks while the CAR is made (default: the OS's temporary directory). */
  tmpDir?: string
}

export function createWebImporter(opts: WebImporterOptions): WebImporter {
  return {
    async import(url, { maxBytes, signal }): Promise<WebImport> {
      const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'pickup-web-'))
      const blockstore = new FsBlockstore(dir)
      const close = async () => {
        await blockstore.close().catch(() => {})
        await rm(dir, { recursive: true, force: true })
      }
      try {
        await blockstore.open()
        const res = await guardedGet(url, { ...opts, maxBytes, ...(signal ? { signal } : {}) })
        let bytes = 0
        const counted = (async function* () {
          for await (const chunk of res.body) {
            bytes += chunk.byteLength
            yield chunk
          }
        })()
        const cid = await unixfs({ blockstore }).addByteStream(counted, signal ? { signal } : {})
        if (cid.version !== 1) throw new WebContentError('WEB_IMPORT_FAILED', 'the importer made a CIDv0')
        return {
          cid: cid.toString(),
          url: res.url,
          bytes,
          get: async (block, o) => {
            o?.signal?.throwIfAborted()
            return collectBytes(blockstore.get(block, o?.signal ? { signal: o.signal } : {}))
          },
          close,
        }
      } catch (err) {
        await close()
        throw err
      }
    },
  }
}
