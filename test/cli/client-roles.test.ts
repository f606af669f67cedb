// The client's role lists (which the CLI checks input against without loading the server's
// policy) are the server's.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PROJECT_ROLES as POLICY_PROJECT_ROLES, ROLES } from '../../src/access/policy.js'
import { PROJECT_ROLES, WORKSPACE_ROLES } from '../../src/client/roles.js'

test('the client names the roles the server decides with', () => {
  assert.deepEqual([...WORKSPACE_ROLES], [...ROLES])
  assert.deepEqual([...PROJECT_ROLES], [...POLICY_PROJECT_ROLES])
})
