/**
 * `npm run synth -- --stage <stage> [--out <dir>] [--region <region>] [--account <id>]`
 *
 * Synthesizes every stack of pickup's SST app offline (no AWS credentials, no network) and writes each
 * CloudFormation template to `<dir>/<stack name>.template.json` (default dir: `cdk.out`), so operators can
 * review and lint what `sst deploy` would deploy. The deploy-time variables come from the environment and
 * the `.env`, `.env.<stage>` files SST loads, exactly as for `sst deploy`, and are checked the same way.
 *
 * `sst build` cannot do this (it calls STS first); SST's App synthesizes without AWS given a fixed account and
 * region (see test/stacks/synth.ts). The account defaults to `CDK_DEFAULT_ACCOUNT` or a placeholder
 * (000000000000) that only appears in ARNs; the region to `AWS_REGION` or us-east-1, as sst.config.ts does.
 * The Lambda functions are not bundled: their code is an asset `sst deploy` builds (test/stacks/bundle.test.ts
 * builds and runs the same bundles).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

const USAGE = 'usage: npm run synth -- --stage <stage> [--out <dir>] [--region <region>] [--account <id>]'

async function main(): Promise<number> {
  let values: { stage?: string; out?: string; region?: string; account?: string; help?: boolean }
  try {
    ;({ values } = parseArgs({
      options: {
        stage: { type: 'string' },
        out: { type: 'string' },
        region: { type: 'string' },
        account: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }))
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  if (!values.stage) {
    console.error(`--stage is required\n${USAGE}`)
    return 2
  }
  const stage = values.stage
  const out = resolve(values.out ?? 'cdk.out')
  const region = values.region ?? process.env.AWS_REGION ?? 'us-east-1'
  const account = values.account ?? process.env.CDK_DEFAULT_ACCOUNT ?? '000000000000'

  // Loaded once the arguments are known to be good: SST and CDK take seconds to load.
  const [{ Template }, { App, getStack }, { initProject, useProject }, { ConfigError }, config, stacks] =
    await Promise.all([
      import('aws-cdk-lib/assertions'),
      import('sst/constructs'),
      import('sst/project.js'),
      import('../core/config.ts'),
      import('../stacks/deploy-config.ts'),
      import('../stacks/index.ts'),
    ])
  const { parseDeployConfig } = config
  const { addPickupStacks, STACKS } = stacks

  // SST writes its types and cloud assembly while synthesizing: into a scratch directory, not the project.
  const scratch = mkdtempSync(join(tmpdir(), 'pickup-synth-'))
  try {
    await initProject({ stage })
    useProject().paths.out = scratch
    useProject().paths.artifacts = join(scratch, 'artifacts')
    let cfg: ReturnType<typeof parseDeployConfig>
    try {
      cfg = parseDeployConfig(process.env)
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(err.message)
        return 1
      }
      throw err
    }
    const app = new App(
      { mode: 'deploy', name: 'pickup', stage, region, account },
      { outdir: join(scratch, 'cdk.out') },
    )
    addPickupStacks(app, cfg)
    mkdirSync(out, { recursive: true })
    for (const fn of STACKS) {
      const stack = getStack(fn)
      const file = join(out, `${stack.stackName}.template.json`)
      writeFileSync(file, `${JSON.stringify(Template.fromStack(stack).toJSON(), null, 2)}\n`)
      console.log(file)
    }
    return 0
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

process.exitCode = await main()
