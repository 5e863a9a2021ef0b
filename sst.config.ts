/**
 * SST v2 app: `npx sst deploy --stage <stage>` (see README.md, "Deploying to AWS"). Deploy-time variables come from the
 * environment and the `.env` / `.env.<stage>` files SST loads (listed in .env.tpl); they are checked before
 * anything is synthesized.
 */
import type { SSTConfig } from 'sst'
import { parseDeployConfig } from './stacks/deploy-config.ts'
import { addPickupStacks } from './stacks/index.ts'

export default {
  config() {
    return { name: 'pickup', region: process.env.AWS_REGION ?? 'us-east-1' }
  },
  stacks(app) {
    addPickupStacks(app, parseDeployConfig(process.env))
  },
} satisfies SSTConfig
