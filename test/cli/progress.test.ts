/** The progress reporter: a bar redrawn in place on a terminal, plain lines at a bounded rate otherwise. */
import { describe, expect, it } from 'vitest'
import { formatAge, formatTable } from '../../cli/format.ts'
import { createProgress } from '../../cli/progress.ts'

function clockAt() {
  let t = 0
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms
    },
  }
}

describe('progress', () => {
  it('redraws a bar in place on a terminal and ends the line when done', () => {
    const c = clockAt()
    const writes: string[] = []
    const p = createProgress({
      label: 'redrive',
      total: 200,
      write: (s) => writes.push(s),
      tty: true,
      now: c.now,
    })
    c.advance(1000)
    p.update(50)
    c.advance(50)
    p.update(60) // within 100 ms of the last draw: not drawn
    c.advance(1000)
    p.update(200)
    p.finish()
    const frames = writes.join('').split('\r\x1b[2K').filter(Boolean)
    expect(frames).toEqual([
      `[${'#'.repeat(8)}${'-'.repeat(22)}] redrive: 50/200 25%, 50/s`,
      `[${'#'.repeat(30)}] redrive: 200/200 100%, 98/s`,
      `[${'#'.repeat(30)}] redrive: 200/200 100%, 98/s\n`,
    ])
  })

  it('prints plain lines at most every 2 s when not on a terminal, and the last state once', () => {
    const c = clockAt()
    const lines: string[] = []
    const p = createProgress({
      label: 'redrive',
      total: 100,
      write: (s) => lines.push(s),
      tty: false,
      now: c.now,
    })
    for (let i = 1; i <= 100; i++) {
      c.advance(100)
      p.update(i)
    }
    p.finish()
    expect(lines.every((l) => l.endsWith('\n') && !l.includes('\r'))).toBe(true)
    expect(lines).toHaveLength(6)
    expect(lines.at(-1)).toBe('redrive: 100/100 100%, 10/s\n')
  })
})

describe('formatting', () => {
  it('ages in their two largest units', () => {
    expect(formatAge(0)).toBe('0s')
    expect(formatAge(61_000)).toBe('1m1s')
    expect(formatAge(3 * 86_400_000 + 4 * 3_600_000 + 5_000)).toBe('3d4h')
  })

  it('tables padded to the widest cell', () => {
    expect(
      formatTable(
        ['A', 'BB'],
        [
          ['xxx', 'y'],
          ['z', ''],
        ],
      ),
    ).toBe('A    BB\nxxx  y\nz\n')
  })
})
