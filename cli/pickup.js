#!/usr/bin/env node
// The `pickup` command: runs cli/main.ts with Node's built-in TypeScript type stripping (Node >= 22.18).
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `pickup needs Node 22.18 or later (this is ${process.version}); run it through npm (npx pickup ...), ` +
      "which puts the project's Node 22 (node_modules/.bin/node) first on PATH.\n",
  )
  process.exit(1)
}
process.removeAllListeners('warning')
process.on('warning', (w) => {
  if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.stack ?? w}\n`)
})
const { main } = await import('./main.ts')
process.exitCode = await main(process.argv)
