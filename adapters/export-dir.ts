/** Export into a directory on disk: paths are relative to it and never leave it. */
import { appendFile, mkdir, writeFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import type { ExportSink } from '../core/collections/export.ts'

export function createDirectorySink(root: string): ExportSink {
  const base = resolve(root)
  const inside = (path: string) => {
    const target = resolve(join(base, path))
    const rel = relative(base, target)
    if (rel.startsWith('..') || rel === '') throw new Error(`export path outside the directory: ${path}`)
    return target
  }
  return {
    async write(path, bytes) {
      const target = inside(path)
      await mkdir(dirname(target), { recursive: true })
      await writeFile(target, bytes)
    },
    async append(path, bytes) {
      await appendFile(inside(path), bytes)
    },
  }
}
