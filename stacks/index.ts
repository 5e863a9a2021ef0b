/**
 * pickup's stacks, in dependency order. sst.config.ts adds them to the SST app; test/stacks adds them to an
 * app of its own, with the same deploy configuration type, and synthesizes them offline.
 */
import type { App } from 'sst/constructs'
import { ApiStack } from './api.ts'
import { CollectionsStack } from './collections.ts'
import { DataStack } from './data.ts'
import { type DeployConfig, setDeployConfig } from './deploy-config.ts'
import { MonitoringStack } from './monitoring.ts'
import { PipelineStack } from './pipeline.ts'
import { WorkerStack } from './worker.ts'

export const STACKS = [
  DataStack,
  PipelineStack,
  CollectionsStack,
  ApiStack,
  WorkerStack,
  MonitoringStack,
] as const

export function addPickupStacks(app: App, cfg: DeployConfig): void {
  setDeployConfig(app, cfg)
  for (const stack of STACKS) app.stack(stack)
}

export { ApiStack, CollectionsStack, DataStack, MonitoringStack, PipelineStack, WorkerStack }
