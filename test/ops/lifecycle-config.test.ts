// The settings of workspace deletion and break-glass: defaults, bounds, and ERR_CONFIG naming the setting.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { buildConfig } from '../../src/ops/config.js'
import { readEnv } from '../../src/ops/env.js'

const config = (env: Record<string, string>) => buildConfig(readEnv({ COFFER_DATA_DIR: '/tmp/coffer-config-test', ...env }))

test('defaults: purge after 30 days, grants up to 60 minutes, 2 approvals', () => {
  const c = config({})
  assert.equal(c.purgeAfterDays, 30)
  assert.deepEqual(c.breakGlass, { maxMinutes: 60, approvals: 2 })
})

test('values within bounds are taken', () => {
  const c = config({ COFFER_PURGE_AFTER_DAYS: '0', COFFER_BREAKGLASS_MAX_MINUTES: '1440', COFFER_BREAKGLASS_APPROVALS: '1' })
  assert.equal(c.purgeAfterDays, 0)
  assert.deepEqual(c.breakGlass, { maxMinutes: 1440, approvals: 1 })
})

test('bad values stop start-up naming the setting', () => {
  for (const [setting, value] of [
    ['COFFER_PURGE_AFTER_DAYS', '31'],
    ['COFFER_PURGE_AFTER_DAYS', '-1'],
    ['COFFER_PURGE_AFTER_DAYS', 'soon'],
    ['COFFER_BREAKGLASS_MAX_MINUTES', '0'],
    ['COFFER_BREAKGLASS_MAX_MINUTES', '1441'],
    ['COFFER_BREAKGLASS_APPROVALS', '0'],
    ['COFFER_BREAKGLASS_APPROVALS', '11'],
    ['COFFER_BREAKGLASS_APPROVALS', '1.5'],
  ] as const) {
    assert.throws(
      () => config({ [setting]: value }),
      (e: { code?: string; setting?: string }) => e.code === 'ERR_CONFIG' && e.setting === setting,
      `${setting}=${value}`,
    )
  }
})
