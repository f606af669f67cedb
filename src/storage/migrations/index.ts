import type { Migration } from '../migrations.js'
import { keyRotation } from './003-key-rotation.js'
import { peopleAndSessions } from './004-people-and-sessions.js'
import { projectRoles } from './005-project-roles.js'
import { machineIdentities } from './006-machine-identities.js'
import { workspaceDeletionAndBreakGlass } from './007-workspace-deletion-and-break-glass.js'
import { cliLogin } from './008-cli-login.js'
import { auditNodesWithoutRowid } from './009-audit-nodes-without-rowid.js'

// One file per schema step after v2, named NNN-what-it-does.ts; each exports one Migration.
// Versions are reserved per piece of work so parallel branches do not collide:
//   3 key rotation · 4 people, sessions, passwords · 5 project roles and RLS
//   6 machine identities and token kinds · 7 workspace deletion and break-glass · 8 CLI login
//   9 audit_nodes without rowid (SQLite)
export const LATER: readonly Migration[] = [
  keyRotation,
  peopleAndSessions,
  projectRoles,
  machineIdentities,
  workspaceDeletionAndBreakGlass,
  cliLogin,
  auditNodesWithoutRowid,
]
