/**
 * Runs one benchmark under bench/ with the project's Node (npm puts the `node` dev dependency, Node 22, on
 * PATH for npm scripts; a system `node` may be older and cannot run the TypeScript benchmarks):
 *
 *   npm run bench -- <name> [arguments ...]       e.g. npm run bench -- validate-car 256M
 *   npm run bench                                  lists the benchmarks
 *
 * The benchmark runs as a child process with this process's Node, its arguments passed through; its exit
 * code is this script's.
 */
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('../bench/', import.meta.url))
const names = readdirSync(dir, { withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith('.ts'))
  .map((e) => e.name.slice(0, -'.ts'.length))
  .sort()

const [name, ...args] = process.argv.slice(2)
if (name === undefined || name === '--help' || name === '-h') {
  console.log(`usage: npm run bench -- <name> [arguments ...]\nbenchmarks: ${names.join(', ')}`)
  process.exit(0)
}
const base = name.replace(/^bench\//, '').replace(/\.ts$/, '')
if (!names.includes(base)) {
  console.error(`no benchmark "${name}": one of ${names.join(', ')}`)
  process.exit(2)
}
const child = spawn(process.execPath, [`${dir}${base}.ts`, ...args], { stdio: 'inherit' })
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal)
  else process.exit(code ?? 1)
})
