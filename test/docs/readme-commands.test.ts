/**
 * The commands the README prints work as printed on a fresh clone: every `npm run <script>` names a script
 * of package.json, every `npm run bench -- <name>` a benchmark the bench script runs, and no command runs a
 * TypeScript file with a bare `node` (the system's may be older than the project's Node 22, which only npm
 * scripts and npx put on PATH).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const root = new URL('../../', import.meta.url)
const readme = readFileSync(new URL('README.md', root), 'utf8')
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  scripts: Record<string, string>
}

/** The text of every inline code span and fenced code block. */
function codeSpans(markdown: string): string[] {
  const blocks = [...markdown.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]!)
  const inline = [...markdown.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!)
  return [...blocks, ...inline]
}

const code = codeSpans(readme).join('\n')

describe('the README commands', () => {
  it('name scripts that package.json defines', () => {
    const scripts = [...code.matchAll(/npm run ([a-z][\w:-]*)/g)].map((m) => m[1]!)
    expect(scripts).toContain('bench')
    for (const s of new Set(scripts)) expect(pkg.scripts, `npm run ${s}`).toHaveProperty(s)
  })

  it('name benchmarks that exist, and the bench script runs them', () => {
    const names = [...new Set([...code.matchAll(/npm run bench -- ([a-z0-9-]+)/g)].map((m) => m[1]!))]
    expect(names).toContain('validate-car')
    for (const n of names) expect(existsSync(new URL(`bench/${n}.ts`, root)), n).toBe(true)
    const list = spawnSync(process.execPath, ['scripts/bench.ts'], { cwd: root, encoding: 'utf8' })
    expect(list.status).toBe(0)
    for (const n of names) expect(list.stdout).toContain(n)
    const bad = spawnSync(process.execPath, ['scripts/bench.ts', 'no-such-bench'], {
      cwd: root,
      encoding: 'utf8',
    })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain('no benchmark "no-such-bench"')
  })

  it('never run a TypeScript file with a bare node', () => {
    const bare = code
      .split('\n')
      .filter((line) => /(^|[\s;&|(])node [^\s]+\.ts\b/.test(line) && !/npx node /.test(line))
    expect(bare).toEqual([])
  })
})
