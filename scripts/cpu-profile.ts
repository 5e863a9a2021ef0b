/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, as bench/lib/local-mode.ts writes with LOCAL_CPU_PROF=<dir>):
 * self time by package (the `node_modules` directory a function's file is in, `pickup` for the project's own
 * files, `node:` for Node's internals, V8's own entries such as `(garbage collector)` by name) and the
 * functions with the most self time, with the package's or file's name.
 *
 *   npx node scripts/cpu-profile.ts <file.cpuprofile> [top functions, default 40] [function name]
 *
 * With a function name: that function's self time by the stacks it was called from (the nearest frames
 * outside its own package, up to 6), to see which calls pay for it.
 */
import { readFile } from 'node:fs/promises'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const [file, topArg, callersOf] = process.argv.slice(2)
if (!file) {
  console.error('usage: npx node scripts/cpu-profile.ts <file.cpuprofile> [top functions]')
  process.exit(2)
}
const top = Number(topArg ?? 40)
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile

/** The package a script belongs to: the last `node_modules/<name>` (or `<@scope/name>`) of its path. */
export function packageOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  if (url.startsWith('node:')) return 'node:'
  const parts = url.split('/node_modules/')
  if (parts.length < 2) return 'pickup'
  const rest = parts[parts.length - 1]!.split('/')
  return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
}

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const selfUs = new Map<number, number>()
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
}

const byPackage = new Map<string, number>()
const byFunction = new Map<string, number>()
let total = 0
for (const [id, us] of selfUs) {
  const node = byId.get(id)
  if (!node) continue
  const { functionName, url, lineNumber } = node.callFrame
  total += us
  const pkg = packageOf(url, functionName)
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us)
  if (pkg === '(idle)' || pkg === '(program)') continue
  const where = url.replace(/^.*\/node_modules\//, '').replace(/^.*\/(?=[^/]+\/[^/]+$)/, '')
  const key = `${functionName || '(anonymous)'}  ${where}:${lineNumber + 1}`
  byFunction.set(key, (byFunction.get(key) ?? 0) + us)
}

const ms = (us: number) => (us / 1000).toFixed(0)
const idle = byPackage.get('(idle)') ?? 0
console.log(
  `${file}: ${ms(total)} ms sampled, ${ms(total - idle)} ms not idle (${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s)`,
)
console.log('\nself time by package (ms, share of non-idle):')
for (const [pkg, us] of [...byPackage].sort((a, b) => b[1] - a[1])) {
  if (pkg === '(idle)') continue
  if (us < (total - idle) / 1000) break
  console.log(`${ms(us).padStart(8)}  ${((100 * us) / (total - idle)).toFixed(1).padStart(5)}%  ${pkg}`)
}
console.log(`\ntop ${top} functions by self time (ms):`)
for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${ms(us).padStart(8)}  ${key}`)
}

if (callersOf) {
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const stacks = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (node?.callFrame.functionName !== callersOf) continue
    const own = packageOf(node.callFrame.url, callersOf)
    const frames: string[] = []
    for (let p = parent.get(id); p !== undefined && frames.length < 6; p = parent.get(p)) {
      const f = byId.get(p)!.callFrame
      const pkg = packageOf(f.url, f.functionName)
      if (pkg === own && frames.length === 0) continue
      frames.push(`${f.functionName || '(anonymous)'}@${f.url.replace(/^.*\//, '')}:${f.lineNumber + 1}`)
    }
    const key = frames.join(' < ')
    stacks.set(key, (stacks.get(key) ?? 0) + us)
  }
  console.log(`\n${callersOf}: self time by caller stack (ms):`)
  for (const [key, us] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
    console.log(`${ms(us).padStart(8)}  ${key}`)
  }
}
