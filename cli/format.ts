/** Output helpers shared by the commands: tables, ages, sizes, JSON. */

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)))
  return `${all
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`
}

/** A duration as its two largest units: `3d4h`, `5m12s`, `12s`, `0s`. */
export function formatAge(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000))
  const units: Array<[string, number]> = [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ]
  const parts: string[] = []
  for (const [unit, size] of units) {
    if (s >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)}${unit}`)
      s %= size
    }
    if (parts.length === 2) break
  }
  return parts.join('')
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let i = 0
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024
    i++
  }
  return i === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[i]} (${bytes} B)`
}

export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString()
}

/** Shortens text for a table cell. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}
