/**
 * Offline synthesis of pickup's SST app, for the stack tests.
 *
 * `sst build` cannot run offline (it calls STS first), but SST's App synthesizes without AWS:
 * - `initProject({ stage })` loads sst.config.ts (shallow: without its `stacks`) and sets SST's global
 *   project, which `App` and `Stack` read (the SSM prefix, the synthesizer, the types directory);
 * - `new App({ mode: 'deploy', ... })` with a fixed account and region, so nothing is looked up;
 * - the stacks are added, and `Template.fromStack(getStack(X))` synthesizes. `app.finish()`, which builds
 *   the functions and needs AWS (bootstrap bucket), is never called: functions keep SST's placeholder code
 *   (test/stacks/bundle.test.ts bundles the real handlers the way SST does instead).
 * Two details: initProject also loads `.env*` files into process.env, so the deploy configuration is always
 * passed explicitly here, never read from process.env; and App rewrites `.sst/types` when constructed, so
 * each test process points SST's output directory (and the cloud assemblies) at a temporary directory of its
 * own, removed after the test file (test files run in parallel).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aspects, type Stack } from 'aws-cdk-lib'
import { Annotations, Template } from 'aws-cdk-lib/assertions'
import { AwsSolutionsChecks } from 'cdk-nag'
import { App, getStack } from 'sst/constructs'
import { initProject, useProject } from 'sst/project.js'
import { afterAll } from 'vitest'
import { type DeployConfig, parseDeployConfig } from '../../stacks/deploy-config.ts'
import {
  ApiStack,
  addPickupStacks,
  CollectionsStack,
  DataStack,
  MonitoringStack,
  PipelineStack,
  WorkerStack,
} from '../../stacks/index.ts'

export const ACCOUNT = '123456789012'
export const REGION = 'us-east-1'

export type StackName = 'data' | 'pipeline' | 'collections' | 'api' | 'worker' | 'monitoring'

export interface Synthesized {
  cfg: DeployConfig
  app: App
  stacks: Record<StackName, Stack>
  templates: Record<StackName, Template>
  annotations: Record<StackName, Annotations>
}

let projectStage: string | undefined
/** SST's output directory and the cloud assemblies of this test file, removed after it. */
const outDir = mkdtempSync(join(tmpdir(), 'pickup-sst-'))
afterAll(() => rmSync(outDir, { recursive: true, force: true }))

async function useStage(stage: string): Promise<void> {
  if (projectStage === stage) return
  await initProject({ stage })
  useProject().paths.out = outDir
  useProject().paths.artifacts = join(outDir, 'artifacts')
  projectStage = stage
}

/** Synthesizes every stack of the app for a stage and a deploy-time environment (defaults when empty). */
export async function synthesize(
  stage: string,
  env: Record<string, string> = {},
  opts: { nag?: boolean } = {},
): Promise<Synthesized> {
  await useStage(stage)
  const cfg = parseDeployConfig(env)
  const app = new App(
    { mode: 'deploy', name: 'pickup', stage, region: REGION, account: ACCOUNT },
    { outdir: mkdtempSync(join(outDir, 'cdk.out-')) },
  )
  if (opts.nag) Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }))
  addPickupStacks(app, cfg)
  const stacks: Record<StackName, Stack> = {
    data: getStack(DataStack),
    pipeline: getStack(PipelineStack),
    collections: getStack(CollectionsStack),
    api: getStack(ApiStack),
    worker: getStack(WorkerStack),
    monitoring: getStack(MonitoringStack),
  }
  const templates = Object.fromEntries(
    Object.entries(stacks).map(([name, stack]) => [name, Template.fromStack(stack)]),
  ) as Record<StackName, Template>
  const annotations = Object.fromEntries(
    Object.entries(stacks).map(([name, stack]) => [name, Annotations.fromStack(stack)]),
  ) as Record<StackName, Annotations>
  return { cfg, app, stacks, templates, annotations }
}

/**
 * What `sst deploy` does up to synthesis: load sst.config.ts with SST's own loader (esbuild, not shallow),
 * and run its `stacks(app)`. Its deploy configuration comes from process.env, as in a deploy.
 */
export async function synthesizeFromConfig(stage: string): Promise<App> {
  await useStage(stage)
  const { load } = await import('sst/stacks/build.js')
  const [, config] = (await load(useProject().paths.config)) as [unknown, { stacks(app: App): void }]
  const app = new App(
    { mode: 'deploy', name: 'pickup', stage, region: REGION, account: ACCOUNT },
    { outdir: mkdtempSync(join(outDir, 'cdk.out-')) },
  )
  config.stacks(app)
  app.synth()
  return app
}

// ---------------------------------------------------------------- template helpers

export type Resource = { Type: string; Properties?: Record<string, unknown>; DeletionPolicy?: string }

/** The template's resources, by logical id. */
export function resourcesOf(template: Template, type?: string): Array<[string, Resource]> {
  const all = Object.entries(template.toJSON().Resources as Record<string, Resource>)
  return type ? all.filter(([, r]) => r.Type === type) : all
}

/** The one resource of this type whose logical id starts with `idPrefix` (construct ids are prefixes). */
export function resourceOf(template: Template, type: string, idPrefix: string): Resource {
  const found = resourcesOf(template, type).filter(([id]) => id.startsWith(idPrefix))
  if (found.length !== 1) throw new Error(`${found.length} ${type} resources named ${idPrefix}*`)
  return found[0]![1]
}

export interface Statement {
  Sid?: string
  Effect: string
  Action: string | string[]
  Resource: unknown
  Condition?: unknown
}

/** The statements of the IAM policies attached to the role whose logical id starts with `rolePrefix`. */
export function roleStatements(template: Template, rolePrefix: string): Statement[] {
  return resourcesOf(template, 'AWS::IAM::Policy')
    .filter(([, p]) =>
      ((p.Properties?.Roles as Array<{ Ref?: string }>) ?? []).some((r) => r.Ref?.startsWith(rolePrefix)),
    )
    .flatMap(([, p]) => (p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement)
}

export const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action])

/**
 * A deployed environment as the function or task would see it: values CloudFormation resolves at deploy
 * time (references, imports) become placeholders of the right shape (URLs for `*_URL`).
 */
export function concreteEnv(vars: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(vars).map(([k, v]) => [
      k,
      typeof v === 'string'
        ? v
        : k.endsWith('_URL')
          ? 'https://sqs.us-east-1.amazonaws.com/123456789012/q'
          : `<${k}>`,
    ]),
  )
}

/** A container definition's environment as a record. */
export function containerEnv(container: { Environment?: Array<{ Name: string; Value: unknown }> }) {
  return Object.fromEntries((container.Environment ?? []).map((e) => [e.Name, e.Value]))
}
