/**
 * cdk-nag's AwsSolutions rules over every stack (see ./synth.ts for the offline synthesis): no finding may be
 * left unsuppressed, and every suppression carries its reason. Suppressions live beside the resources they
 * cover (stacks/*.ts, helpers in stacks/nag.ts); IAM wildcard suppressions name the exact findings.
 */
import { Match } from 'aws-cdk-lib/assertions'
import { describe, expect, it } from 'vitest'
import { resourcesOf, synthesize } from './synth.ts'

const CONFIGS: Array<[string, Record<string, string>]> = [
  ['production', {}],
  ['pr-7', {}],
  [
    'staging',
    {
      DESTINATION_BUCKET_NAME: 'existing-car-bucket',
      API_DOMAIN: 'pickup.example.org',
      API_HOSTED_ZONE_ID: 'Z0123456789ABCDEFGHIJ',
      API_HOSTED_ZONE_NAME: 'example.org',
      ALARM_EMAIL: 'ops@example.org',
      WORKER_CPU_ARCHITECTURE: 'arm64',
    },
  ],
]

describe.each(CONFIGS)('AwsSolutions checks, stage %s', (stage, env) => {
  it('leave no unsuppressed error or warning, and every suppression has a reason', async () => {
    const s = await synthesize(stage, env, { nag: true })
    for (const [name, annotations] of Object.entries(s.annotations)) {
      const findings = [
        ...annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
        ...annotations.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ].map((f) => `${f.id}: ${String(f.entry.data).split(':')[0]}`)
      expect(findings, name).toEqual([])
    }
    let suppressions = 0
    for (const [name, template] of Object.entries(s.templates)) {
      for (const [id, resource] of resourcesOf(template)) {
        const rules = (
          resource as {
            Metadata?: { cdk_nag?: { rules_to_suppress?: Array<{ id: string; reason: string }> } }
          }
        ).Metadata?.cdk_nag?.rules_to_suppress
        for (const rule of rules ?? []) {
          suppressions++
          expect(rule.id, `${name}/${id}`).toMatch(/^AwsSolutions-[A-Z0-9]+$/)
          expect(rule.reason.length, `${name}/${id} ${rule.id}`).toBeGreaterThanOrEqual(30)
        }
      }
    }
    expect(suppressions).toBeGreaterThan(0)
  })
})
