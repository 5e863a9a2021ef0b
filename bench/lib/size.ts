/** Sizes as benchmarks take them on the command line: `64M`, `1G`, `512KiB`, `1.5MiB`, or bytes. */
const MiB = 1024 * 1024

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(s.trim())
  if (!m) throw new Error(`not a size: ${s}`)
  const unit = { '': 1, K: 1024, M: MiB, G: 1024 * MiB }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G']
  return Math.round(Number(m[1]) * unit)
}
