/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, as bench/lib/local-mode.ts writes with LOCAL_CPU_PROF=<dir>):
 * self time by package (the `node_modules` directory a function's file is in, `pickup` for the project's own
 * files, `node:` for Node's internals, V8's own entries such as `(garbage collector)` by name) and the
 * functions with the most self time, with the package's or file's name.
 *
 *   node scripts/cpu-profile.ts <file.cpuprofile> [top functions, default 40]
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

const [file, topArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node scripts/cpu-profile.ts <file.cpuprofile> [top functions]')
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
  const where = pkg === 'pickup' || pkg === 'node:' ? url.replace(/^.*\/(?=[^/]+\/[^/]+$)/, '') : pkg
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
