import type { Migration } from '../migrations.js'

// One file per schema step after v2, named NNN-what-it-does.ts; each exports one Migration.
// Versions are reserved per piece of work so parallel branches do not collide:
//   3 key rotation · 4 people, sessions, passwords · 5 project roles and RLS
//   6 machine identities and token kinds · 7 workspace deletion and break-glass
export const LATER: readonly Migration[] = []
