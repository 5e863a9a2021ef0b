/**
 * Runs once before every suite. The kubo suites need a kubo binary (scripts/install-tools.sh builds one):
 * without it they skip, and this prints one line saying how to enable them; on CI (CI set) a missing kubo
 * fails the run instead, so a green CI always means the production worker's IPFS node was tested.
 */
import { KUBO_MISSING, kuboBinary } from './helpers/kubo.ts'

export default function setup(): void {
  if (kuboBinary) return
  if (process.env.CI) {
    throw new Error(`${KUBO_MISSING}. On CI the kubo suites must run: .ci/run builds kubo first.`)
  }
  process.stdout.write(`\n${KUBO_MISSING}\n\n`)
}
