// `npm start`: plain JavaScript that any Node can parse, so that a missing `npm install` or a Node too old to
// run TypeScript (run as `node local/start.js` without npm) is one clear line instead of a syntax error or a
// module-not-found stack. Then runs local/main.ts with Node's built-in type stripping (Node >= 22.18).
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

function fail(line) {
  process.stderr.write(`pickup: ${line}\n`)
  process.exit(1)
}

/** Whether `name` is installed where Node's resolution finds it from the project's root. */
function installed(name) {
  for (let dir = root; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules', name, 'package.json'))) return true
    if (dirname(dir) === dir) return false
  }
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const missing = Object.keys(pkg.dependencies ?? {}).filter((name) => !installed(name))
if (missing.length > 0) {
  const some = missing.slice(0, 3).join(', ') + (missing.length > 3 ? ` and ${missing.length - 3} more` : '')
  fail(
    `dependencies are not installed (missing: ${some}). Run \`npm install\` in ${root}, then \`npm start\`.`,
  )
}

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  fail(
    `needs Node 22.18 or later, and this is ${process.version}. Run it with \`npm start\`, which uses the ` +
      "project's Node 22 (installed by `npm install` as node_modules/.bin/node).",
  )
}

process.removeAllListeners('warning')
process.on('warning', (w) => {
  if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.stack ?? w}\n`)
})
await import('./main.ts')
