import type { Migration } from './migration.js'
import { initial } from './001-initial.js'
import { auditMerkleTree } from './002-audit-merkle-tree.js'
import { keyRotation } from './003-key-rotation.js'
import { peopleAndSessions } from './004-people-and-sessions.js'
import { projectRoles } from './005-project-roles.js'
import { machineIdentities } from './006-machine-identities.js'
import { workspaceDeletionAndBreakGlass } from './007-workspace-deletion-and-break-glass.js'
import { cliLogin } from './008-cli-login.js'
import { auditNodesWithoutRowid } from './009-audit-nodes-without-rowid.js'
import { valueFingerprints } from './010-value-fingerprints.js'
import { auditQueue } from './011-audit-queue.js'
import { authEpochs } from './012-auth-epochs.js'
import { referencesAndOverrides } from './013-references-and-overrides.js'
import { changeRequests } from './014-change-requests.js'
import { secretChangeNotify } from './015-secret-change-notify.js'
import { webhooks } from './017-webhooks.js'
import { dynamicDatabaseRoles } from './018-dynamic-database-roles.js'
import { machineOidcTrust } from './019-machine-oidc-trust.js'
import { awsRoles } from './020-aws-roles.js'
import { oauthConnections } from './021-oauth-connections.js'
import { targetEpochs } from './022-target-epochs.js'
import { environmentSnapshots } from './023-environment-snapshots.js'

// One file per schema step, named NNN-what-it-does.ts; each exports one Migration and imports
// nothing outside src/storage/migrations but kysely, node:* and types (a test enforces it), so
// a step does the same thing whatever the rest of the code becomes. Code a step needs from
// elsewhere is copied under ./frozen/ and never changed.
// Versions are reserved per piece of work so parallel branches do not collide:
//   1 initial · 2 audit Merkle tree · 3 key rotation · 4 people, sessions, passwords
//   5 project roles and RLS · 6 machine identities and token kinds
//   7 workspace deletion and break-glass · 8 CLI login · 9 audit_nodes without rowid (SQLite)
//   10 value fingerprints (environment matrix, .env preview) · 11 audit queue (sequenced log)
//   12 auth epochs (principal cache) · 13 references, imports and personal overrides
//   14 protected environments, change requests · 15 secret change notifications (run --watch)
//   17 webhooks · 18 dynamic database roles · 19 machine identities' OIDC trust
//   20 AWS roles (external IDs, role ARNs) · 21 OAuth connections · 22 target epochs (target cache)
//   23 environment snapshots (one ciphertext per environment fetch)
/** Every schema step, in version order. */
export const STEPS: readonly Migration[] = [
  initial,
  auditMerkleTree,
  keyRotation,
  peopleAndSessions,
  projectRoles,
  machineIdentities,
  workspaceDeletionAndBreakGlass,
  cliLogin,
  auditNodesWithoutRowid,
  valueFingerprints,
  auditQueue,
  authEpochs,
  referencesAndOverrides,
  changeRequests,
  secretChangeNotify,
  webhooks,
  dynamicDatabaseRoles,
  machineOidcTrust,
  awsRoles,
  oauthConnections,
  targetEpochs,
  environmentSnapshots,
]
